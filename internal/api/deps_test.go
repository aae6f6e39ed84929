package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs `go list` with args in the package's directory.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// The API's documents are imported by clients: the package links only the
// standard library, internal/noderecord and its internal/base32 (both
// standard-library only).
func TestOnlyStandardLibrary(t *testing.T) {
	for _, dep := range goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".") {
		switch dep {
		case "github.com/verity-cdn/verity/internal/api", "github.com/verity-cdn/verity/internal/noderecord",
			"github.com/verity-cdn/verity/internal/base32":
		default:
			t.Errorf("internal/api depends on %s", dep)
		}
	}
}
