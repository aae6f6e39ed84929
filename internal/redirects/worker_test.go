package redirects

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil"
)

// workerJS is the service worker, whose JavaScript applies the rules with
// the worker in control (matchRedirects, matchRule, substitute).
const workerJS = "../../serviceworker/verity-sw.js"

type jsCase struct {
	Rules Rules    `json:"rules"`
	Paths []string `json:"paths"`
}

type jsMatch struct {
	To     string `json:"to"`
	Status int    `json:"status"`
}

// matchInWorker runs the worker's matching under node on each case's
// paths: one result per path, nil for no match.
func matchInWorker(t *testing.T, cases []jsCase) [][]*jsMatch {
	t.Helper()
	prog := testutil.JSFunctions(t, workerJS, "substitute", "matchRedirects", "matchRule") + `
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((c) => c.paths.map((p) => matchRedirects(c.rules || [], p)));
  process.stdout.write(JSON.stringify(out));
});
`
	var out [][]*jsMatch
	testutil.RunNode(t, prog, cases, &out)
	if len(out) != len(cases) {
		t.Fatalf("node answered %d cases of %d", len(out), len(cases))
	}
	return out
}

// The worker's JavaScript decides as this package does, on the
// specification's example, the other tests' files and random paths and
// rules made of the segments that matter (placeholders, splats, trailing
// slashes, empty segments, slashes and backslashes that could lead off
// the origin).
func TestWorkerMatchesAlike(t *testing.T) {
	files := []string{
		specExample,
		"/old /new\n/blog/:slug https://example.com/:slug 302\n",
		"/go/* /:splat 302\n/x/:a/:ab /:ab/:a 200\n",
		"/a/:id/:identity /b/:identity/:id\n/* /index.html 200\n",
		"/ /home 302\n/dir/ /d 301\n/s/* /t/:splat/ 307\n",
	}
	segs := []string{"", "a", "b", "x", ":id", ":a", "*", "old", "go", "%2F", "\\", "evil.example", "index.html"}
	rng := rand.New(rand.NewPCG(1, 2))
	path := func(placeholders bool) string {
		var b strings.Builder
		n := rng.IntN(5)
		for i := 0; i < n; i++ {
			b.WriteString("/")
			s := segs[rng.IntN(len(segs))]
			if !placeholders && (strings.HasPrefix(s, ":") || s == "*") {
				s = "p"
			}
			b.WriteString(s)
		}
		if n == 0 || rng.IntN(4) == 0 {
			b.WriteString("/")
		}
		return b.String()
	}
	for i := 0; i < 40; i++ {
		var f strings.Builder
		for j := 0; j < 1+rng.IntN(4); j++ {
			from := path(true)
			if k := strings.IndexByte(from, '*'); k >= 0 {
				from = from[:k+1]
			}
			to := path(true)
			if rng.IntN(5) == 0 {
				to = "https://example.com" + to
			}
			status := []string{"", "200", "301", "302", "404", "410"}[rng.IntN(6)]
			f.WriteString(from + " " + to + " " + status + "\n")
		}
		files = append(files, f.String())
	}
	var cases []jsCase
	for _, file := range files {
		rs, err := Parse([]byte(file))
		if err != nil {
			continue // random rules may not parse; the parser is Go's alone
		}
		c := jsCase{Rules: rs}
		for i := 0; i < 60; i++ {
			c.Paths = append(c.Paths, path(false))
		}
		for _, r := range rs {
			c.Paths = append(c.Paths, strings.ReplaceAll(strings.ReplaceAll(r.From, "*", "rest/of/it"), ":", "v"), r.From)
		}
		cases = append(cases, c)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d rule files parsed", len(cases))
	}
	got := matchInWorker(t, cases)
	checked := 0
	for i, c := range cases {
		if len(got[i]) != len(c.Paths) {
			t.Fatalf("case %d: node answered %d paths of %d", i, len(got[i]), len(c.Paths))
		}
		for j, p := range c.Paths {
			to, status, ok := c.Rules.Match(p)
			js := got[i][j]
			switch {
			case !ok && js != nil:
				t.Errorf("rules %v, path %q: Go matches nothing, the worker %q %d", c.Rules, p, js.To, js.Status)
			case ok && (js == nil || js.To != to || js.Status != status):
				t.Errorf("rules %v, path %q: Go %q %d, the worker %+v", c.Rules, p, to, status, js)
			}
			checked++
		}
	}
	t.Logf("%d paths on %d rule files decided alike", checked, len(cases))
}
