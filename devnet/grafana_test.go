package devnet

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// dashboardDir holds the Grafana dashboards of the gateway's and the
// nodes' Prometheus metrics (docs/operating-a-node.md, "Dashboards").
const dashboardDir = "../deploy/grafana"

// metricDef is a metric the code defines: its labels, and whether it is a
// histogram (queried by its _bucket, _sum and _count series).
type metricDef struct {
	labels    []string
	histogram bool
}

// definedMetrics reads the metrics the gateway and the nodes define from
// their sources: each `Name: "verity_..."` with the label list that
// follows it before the next metric.
func definedMetrics(t *testing.T) map[string]metricDef {
	t.Helper()
	name := regexp.MustCompile(`Name:\s*"(verity_[a-z0-9_]+)"`)
	labels := regexp.MustCompile(`\[\]string\{([^}]*)\}`)
	defs := map[string]metricDef{}
	for _, dir := range []string{"../gateway", "../node", "../coordinator", "../control"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ms := name.FindAllSubmatchIndex(src, -1)
			for i, m := range ms {
				end := len(src)
				if i+1 < len(ms) {
					end = ms[i+1][0]
				}
				rest := src[m[1]:end]
				// The constructor is the last prometheus.New... before the name.
				before := string(src[:m[0]])
				ctor := before[strings.LastIndex(before, "prometheus.New")+1:]
				d := metricDef{histogram: strings.HasPrefix(ctor, "rometheus.NewHistogram")}
				if l := labels.FindSubmatch(rest); l != nil {
					for _, s := range strings.Split(string(l[1]), ",") {
						if s = strings.Trim(strings.TrimSpace(s), `"`); s != "" {
							d.labels = append(d.labels, s)
						}
					}
				}
				defs[string(src[m[2]:m[3]])] = d
			}
		}
	}
	if len(defs) < 20 {
		t.Fatalf("found only %d metric definitions in the sources", len(defs))
	}
	return defs
}

// The dashboards in deploy/grafana are valid Grafana JSON whose every
// query names metrics the gateway and the nodes define, with labels they
// have; the labels read from the sources are those a running devnet's
// /metrics shows.
func TestGrafanaDashboardsUseExistingMetrics(t *testing.T) {
	defs := definedMetrics(t)
	files, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil || len(files) < 2 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	metricRe := regexp.MustCompile(`\bverity_[a-z0-9_]+\b`)
	selectorRe := regexp.MustCompile(`(verity_[a-z0-9_]+)\{([^}]*)\}`)
	matcherRe := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	byRe := regexp.MustCompile(`\bby\s*\(([^)]*)\)\s*\(([^()]*(?:\([^()]*\))*[^()]*)\)`)
	used := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Type    string `json:"type"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Fatalf("%s: no uid, title or panels", f)
		}
		for _, p := range d.Panels {
			if p.Type == "" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no type or no query", f, p.Title)
			}
			for _, q := range p.Targets {
				names := metricRe.FindAllString(q.Expr, -1)
				if len(names) == 0 {
					t.Errorf("%s: panel %q: query %q names no verity metric", f, p.Title, q.Expr)
				}
				for _, n := range names {
					if _, ok := lookup(defs, n); !ok {
						t.Errorf("%s: panel %q: %s is no metric the code defines", f, p.Title, n)
					}
					used++
				}
				for _, s := range selectorRe.FindAllStringSubmatch(q.Expr, -1) {
					def, _ := lookup(defs, s[1])
					for _, m := range matcherRe.FindAllStringSubmatch(s[2], -1) {
						if m[1] != "instance" && m[1] != "job" && !slices.Contains(def.labels, m[1]) {
							t.Errorf("%s: panel %q: %s has no label %q (it has %v)", f, p.Title, s[1], m[1], def.labels)
						}
					}
				}
				for _, by := range byRe.FindAllStringSubmatch(q.Expr, -1) {
					inner := metricRe.FindAllString(by[2], -1)
					for _, l := range strings.Split(by[1], ",") {
						l = strings.TrimSpace(l)
						if l == "" || l == "instance" || l == "job" {
							continue
						}
						for _, n := range inner {
							def, _ := lookup(defs, n)
							if !(l == "le" && def.histogram) && !slices.Contains(def.labels, l) {
								t.Errorf("%s: panel %q: grouped by %q, which %s does not have (it has %v)", f, p.Title, l, n, def.labels)
							}
						}
					}
				}
			}
		}
	}
	if used < 20 {
		t.Fatalf("the dashboards use only %d metric references", used)
	}

	// What a running devnet exposes agrees with the definitions read
	// from the sources (so the checks above read them right).
	d, c := start(t, t.TempDir())
	req, _ := http.NewRequest(http.MethodGet, d.Gateway().URL()+"/", nil)
	req.Host = "demo.localhost"
	if resp, err := c.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	urls := []string{d.Gateway().URL() + "/metrics"}
	for _, n := range d.Nodes() {
		urls = append(urls, strings.TrimRight(n.HTTPURL(), "/")+"/metrics")
	}
	seen := 0
	for _, u := range urls {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(get(t, c, u))))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		for name, fam := range fams {
			def, ok := defs[name]
			if !ok || len(fam.Metric) == 0 {
				continue
			}
			seen++
			var got []string
			for _, lp := range fam.Metric[0].Label {
				got = append(got, lp.GetName())
			}
			if !slices.Equal(sortedCopy(got), sortedCopy(def.labels)) {
				t.Errorf("%s: labels %v on /metrics, %v read from the sources", name, got, def.labels)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("only %d defined metrics on the devnet's /metrics", seen)
	}
}

// lookup finds the definition of a series name: a metric, or a
// histogram's _bucket, _sum or _count series.
func lookup(defs map[string]metricDef, n string) (metricDef, bool) {
	if d, ok := defs[n]; ok {
		return d, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if d, ok := defs[strings.TrimSuffix(n, suf)]; ok && d.histogram && strings.HasSuffix(n, suf) {
			return d, true
		}
	}
	return metricDef{}, false
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
