package siteclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The CLI's client decodes internal/api documents and links none of the
// servers, nor NATS.
func TestLinksNoServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{
			"github.com/verity-cdn/verity/gateway",
			"github.com/verity-cdn/verity/control",
			"github.com/verity-cdn/verity/coordinator",
			"github.com/verity-cdn/verity/internal/events",
			"github.com/verity-cdn/verity/internal/ledger",
			"github.com/nats-io/",
		} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("siteclient depends on %s", dep)
			}
		}
	}
}
