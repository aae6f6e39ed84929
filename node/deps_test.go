package node_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are packages the node must not link: the software an
// independent operator runs speaks to the coordinator through
// internal/nodeproto and never embeds the coordinator's server, the
// gateway, the event bus or the NATS server. Each is a package path and
// everything under it.
var forbiddenDeps = []string{
	"github.com/nats-io/nats-server/v2",
	"github.com/verity-cdn/verity/coordinator",
	"github.com/verity-cdn/verity/gateway",
	"github.com/verity-cdn/verity/internal/events",
	"github.com/verity-cdn/verity/internal/ledger",
}

func TestNodeDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	// One line per dependency: its path, then the packages it imports.
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	imports := make(map[string][]string)
	var root string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		imports[f[0]] = f[1:]
		root = f[0] // go list -deps prints the package itself last
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if root != "github.com/verity-cdn/verity/node" {
		t.Fatalf("go list ended with %q, want the node package", root)
	}
	// One error per forbidden tree, naming the package reached by the
	// shortest chain of imports.
	for _, bad := range forbiddenDeps {
		var found []string
		for p := range imports {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				found = append(found, p)
			}
		}
		if len(found) == 0 {
			continue
		}
		slices.Sort(found)
		var chain []string
		for _, p := range found {
			if c := importChain(imports, root, p); chain == nil || len(c) < len(chain) {
				chain = c
			}
		}
		t.Errorf("node depends on %s (%d package(s) under the forbidden %s): %s",
			chain[len(chain)-1], len(found), bad, strings.Join(chain, " → "))
	}
}

// importChain returns a shortest chain of imports from root to dep.
func importChain(imports map[string][]string, root, dep string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{root, "...", dep}
}
