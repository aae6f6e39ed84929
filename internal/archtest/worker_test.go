package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wasmSymbol mangles a Go symbol name as the linker does when it writes
// the wasm name section: every byte but a letter, digit, '_' or '.'
// becomes '_' (cmd/link/internal/wasm, nameRegexp). So
// "crypto/sha256.(*Digest).Write" is "crypto_sha256.__Digest_.Write".
var wasmSymbolRe = regexp.MustCompile(`[^\w.]`)

func wasmSymbol(s string) string { return wasmSymbolRe.ReplaceAllString(s, "_") }

// linkedFrom reports whether the function named fn (as in the name
// section) belongs to a package matched by pat. Mangling is lossy ('/',
// '-' and '_' all read '_'), so a package whose path differs from a
// forbidden one only there is taken for it; none of the worker's does.
// Equality and hash functions the compiler generates for a package's
// types ("type:.eq.fmt.pp", for arrays "type:.eq.[2]fmt.pp") count for
// that package.
func linkedFrom(fn, pat string) bool {
	for _, p := range []string{"type_.eq.", "type_.hash."} {
		if rest, ok := strings.CutPrefix(fn, p); ok {
			fn = strings.TrimLeft(rest, "_0123456789") // "[2]" reads "_2_"
			break
		}
	}
	switch {
	case strings.HasSuffix(pat, "/..."):
		base := wasmSymbol(strings.TrimSuffix(pat, "/..."))
		return strings.HasPrefix(fn, base+".") || strings.HasPrefix(fn, base+"_")
	case strings.HasSuffix(pat, "..."):
		return strings.HasPrefix(fn, wasmSymbol(strings.TrimSuffix(pat, "...")))
	default:
		return strings.HasPrefix(fn, wasmSymbol(pat)+".")
	}
}

// linkViolations returns, for each forbidden pattern, the functions of
// names that belong to it and are not allowed.
func linkViolations(names, forbidden, allowed []string) map[string][]string {
	allow := make(map[string]bool)
	for _, a := range allowed {
		allow[wasmSymbol(a)] = true
	}
	out := make(map[string][]string)
	for _, fn := range names {
		if allow[fn] {
			continue
		}
		for _, pat := range forbidden {
			if linkedFrom(fn, pat) {
				out[pat] = append(out[pat], fn)
				break
			}
		}
	}
	return out
}

func TestWorkerLinkSet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker's wasm")
	}
	dependOnSources(t)
	out := filepath.Join(t.TempDir(), "worker.wasm")
	// Without -s -w: the name section is what this test reads.
	cmd := exec.Command(goTool(t), "build", "-trimpath", "-o", out, workerPackage)
	cmd.Dir = moduleRoot(t)
	cmd.Env = goEnv("js", "wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build %s: %v\n%s", workerPackage, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	names, err := wasmFuncNames(b)
	if err != nil {
		t.Fatal(err)
	}
	// A sanity check that the names are the worker's, so that a change of
	// the linker's naming cannot make this test pass vacuously.
	for _, want := range []string{"runtime.main", "main.main", wasmSymbol(modulePath + "/internal/verify.(*Reader).Read")} {
		if !slices.Contains(names, want) {
			t.Fatalf("the worker's name section (%d functions) has no %s", len(names), want)
		}
	}
	bad := linkViolations(names, workerForbidden, workerAllowed)
	if len(bad) == 0 {
		return
	}
	// Show how each forbidden package is imported.
	g := goList(t, listTarget{GOOS: "js", GOARCH: "wasm", Patterns: []string{workerPackage}})
	prev := g.reach(expand(strings.TrimPrefix(workerPackage, "./")), func(string) bool { return true })
	for _, pat := range workerForbidden {
		fns := bad[pat]
		if len(fns) == 0 {
			continue
		}
		n := len(fns)
		if len(fns) > 20 {
			fns = append(fns[:20], "...")
		}
		how := "not imported: linked by name"
		var best []string
		for p := range prev {
			if c := chain(prev, p); matchPattern(pat, p) && (best == nil || len(c) < len(best) || len(c) == len(best) && p < best[len(best)-1]) {
				best = c
			}
		}
		if best != nil {
			how = "imported through " + strings.Join(mapSlice(best, trimModule), " → ")
		}
		t.Errorf("the worker links %d function(s) of %s, %s: %s", n, pat, how, strings.Join(fns, ", "))
	}
}
