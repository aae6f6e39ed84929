package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importGraph maps each listed package's import path to its (non-test)
// imports.
type importGraph map[string][]string

// importViolation is one broken rule: Chain[0] is a package the rule
// constrains, Chain[len-1] a package it must not import, and each
// package in between imports the next.
type importViolation struct {
	Rule    int    // index in the rules
	Pattern string // the Forbid pattern that matched
	Chain   []string
}

func (v importViolation) String() string {
	return trimModule(v.Chain[0]) + " imports " + trimModule(v.Chain[len(v.Chain)-1]) +
		" (forbidden: " + v.Pattern + "): " + strings.Join(mapSlice(v.Chain, trimModule), " → ")
}

// checkImports returns every broken rule in g, at most one per rule,
// constrained package and Forbid pattern: the one with the shortest chain.
// Chains do not pass through another package the same rule constrains:
// when internal/cid imports gateway, internal/cid is reported, not every
// internal package that imports internal/cid.
func checkImports(g importGraph, rules []importRule) []importViolation {
	var out []importViolation
	roots := make([]string, 0, len(g))
	for p := range g {
		if inModule(p) {
			roots = append(roots, p)
		}
	}
	slices.Sort(roots)
	for i, r := range rules {
		for _, root := range roots {
			if !r.constrains(root) {
				continue
			}
			prev := g.reach(root, func(p string) bool { return !r.constrains(p) })
			for _, pat := range r.Forbid {
				var best []string
				for p := range prev {
					if p == root || !matchPattern(expand(pat), p) {
						continue
					}
					c := chain(prev, p)
					if best == nil || len(c) < len(best) || len(c) == len(best) && p < best[len(best)-1] {
						best = c
					}
				}
				if best == nil {
					continue
				}
				out = append(out, importViolation{Rule: i, Pattern: pat, Chain: best})
			}
		}
	}
	return out
}

func (r importRule) constrains(p string) bool {
	if !inModule(p) {
		return false
	}
	in := func(pats []string) bool {
		return slices.ContainsFunc(pats, func(pat string) bool { return matchPattern(expand(pat), p) })
	}
	return in(r.From) && !in(r.Except)
}

// reach returns every package reachable from root with the package it was
// first reached from, following the imports of root and of the packages
// through accepts (breadth first, so chains are shortest; imports in
// sorted order, so they are the same on every run).
func (g importGraph) reach(root string, through func(string) bool) map[string]string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != root && !through(p) {
			continue
		}
		imps := slices.Clone(g[p])
		slices.Sort(imps)
		for _, q := range imps {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return prev
}

func chain(prev map[string]string, p string) []string {
	var c []string
	for ; p != ""; p = prev[p] {
		c = append(c, p)
	}
	slices.Reverse(c)
	return c
}

// expand turns a rule's pattern into a full import path pattern.
func expand(pat string) string {
	if pat == "..." {
		return modulePath + "/..."
	}
	first, _, _ := strings.Cut(pat, "/")
	if strings.Contains(first, ".") {
		return pat
	}
	return modulePath + "/" + pat
}

func inModule(p string) bool { return p == modulePath || strings.HasPrefix(p, modulePath+"/") }

func trimModule(p string) string {
	if rest, ok := strings.CutPrefix(p, modulePath+"/"); ok {
		return rest
	}
	return p
}

// matchPattern reports whether the import path p matches pat as the go
// command matches package patterns: "..." matches any string (slashes
// included), and a trailing "/..." also matches the path without it.
func matchPattern(pat, p string) bool {
	if base, ok := strings.CutSuffix(pat, "/..."); ok && p == base && !strings.Contains(base, "...") {
		return true
	}
	parts := strings.Split(pat, "...")
	if len(parts) == 1 {
		return p == pat
	}
	if !strings.HasPrefix(p, parts[0]) {
		return false
	}
	p = p[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(p, mid)
		if i < 0 {
			return false
		}
		p = p[i+len(mid):]
	}
	return strings.HasSuffix(p, parts[len(parts)-1])
}

func mapSlice(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// goTool is the go command that runs the tests: `go test` puts its own
// GOROOT/bin first on PATH, so this is the toolchain under test.
func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	return p
}

// moduleRoot is the directory of go.mod, two levels up from this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dependOnSources makes the test's cached result depend on the module's
// Go files: go test caches a passing result and reruns the test only when
// a file or environment variable the test itself read has changed, and
// the go command this test runs reads the sources in another process. So
// the test opens every Go file of the module (and reads every directory,
// for new files), and reads the environment that changes what go list
// and go build see.
func dependOnSources(t *testing.T) {
	t.Helper()
	for _, k := range []string{"GOFLAGS", "GOEXPERIMENT", "CGO_ENABLED"} {
		os.Getenv(k)
	}
	root := moduleRoot(t)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// goEnv is the environment for the go command building for goos/goarch:
// this process's, but without -race in GOFLAGS for js/wasm, where the race
// detector does not exist (it changes no file selection).
func goEnv(goos, goarch string) []string {
	env := append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch)
	if goos == "js" {
		var flags []string
		for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
			if f != "-race" && f != "--race" && f != "-race=true" {
				flags = append(flags, f)
			}
		}
		env = append(env, "GOFLAGS="+strings.Join(flags, " "))
	}
	return env
}

// goList lists the packages matched by target's patterns and every
// dependency, for target's GOOS and GOARCH.
func goList(t *testing.T, target listTarget) importGraph {
	t.Helper()
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports"}, target.Patterns...)
	cmd := exec.Command(goTool(t), args...)
	cmd.Dir = moduleRoot(t)
	cmd.Env = goEnv(target.GOOS, target.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOOS=%s GOARCH=%s go %s: %v\n%s", target.GOOS, target.GOARCH, strings.Join(args, " "), err, stderr.Bytes())
	}
	g, err := parseGoList(out)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// parseGoList reads the stream of JSON objects `go list -json` prints.
func parseGoList(out []byte) (importGraph, error) {
	g := make(importGraph)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return g, nil
		} else if err != nil {
			return nil, err
		}
		g[p.ImportPath] = p.Imports
	}
}

func TestImportRules(t *testing.T) {
	dependOnSources(t)
	for _, target := range listTargets {
		t.Run(target.GOOS+"_"+target.GOARCH, func(t *testing.T) {
			g := goList(t, target)
			if _, ok := g[modulePath+"/internal/cid"]; !ok {
				t.Fatalf("go list %v did not list internal/cid: the listing is not the module's", target.Patterns)
			}
			for _, v := range checkImports(g, importRules) {
				t.Errorf("%s\n\trule: %s", v, importRules[v.Rule].Why)
			}
		})
	}
}

// docRulesBegin and docRulesEnd enclose the rules table in
// docs/architecture.md.
const (
	docRulesBegin = "<!-- import rules: internal/archtest/rules_test.go -->\n"
	docRulesEnd   = "<!-- end of import rules -->\n"
)

// rulesTable renders the rules as the Markdown table of
// docs/architecture.md.
func rulesTable(rules []importRule) string {
	code := func(pats []string) string {
		return "`" + strings.Join(pats, "`, `") + "`"
	}
	var b strings.Builder
	b.WriteString("| package | must not import, directly or not | because |\n| --- | --- | --- |\n")
	for _, r := range rules {
		from := code(r.From)
		if len(r.From) == 1 && r.From[0] == "..." {
			from = "every package"
		}
		if len(r.Except) > 0 {
			from += " but " + code(r.Except)
		}
		b.WriteString("| " + from + " | " + code(r.Forbid) + " | " + r.Why + " |\n")
	}
	return b.String()
}

func TestImportRulesInDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), docRulesBegin)
	got, _, ok2 := strings.Cut(rest, docRulesEnd)
	want := rulesTable(importRules)
	if !ok || !ok2 {
		t.Fatalf("docs/architecture.md has no rules table between %q and %q; it should be:\n%s%s%s",
			strings.TrimSpace(docRulesBegin), strings.TrimSpace(docRulesEnd), docRulesBegin, want, docRulesEnd)
	}
	if got != want {
		t.Errorf("docs/architecture.md's import rules differ from importRules (rules_test.go); the table should read:\n%s", want)
	}
}
