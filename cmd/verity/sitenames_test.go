package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/gateway"
)

// Names the docs refuse are refused by `verity sites create` and `verity
// deploy` against a gateway, with the rule in the message, and nothing
// is created.
func TestSiteNamesRefusedAsDocumented(t *testing.T) {
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", cliAdmin}, "gateway: ")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"my_site", "my.site", "Blog", "blog-"} {
		_, err := runCmd(t, runSites, "create", name, "--gateway", gw, "--admin-token", cliAdmin)
		if err == nil || !strings.Contains(err.Error(), gateway.SiteNameRule) {
			t.Errorf("sites create %s: %v, want the rule", name, err)
		}
		_, err = runCmd(t, runDeploy, dir, "--site", name, "--gateway", gw, "--token", cliAdmin)
		if err == nil || !strings.Contains(err.Error(), gateway.SiteNameRule) {
			t.Errorf("deploy --site %s: %v, want the rule", name, err)
		}
	}
	if _, err := runCmd(t, runSites, "create", "my-site", "--gateway", gw, "--admin-token", cliAdmin); err != nil {
		t.Fatal(err)
	}
	list, err := runCmd(t, runSites, "list", "--gateway", gw, "--admin-token", cliAdmin)
	if err != nil || strings.Count(list, "\n") != 1 || !strings.Contains(list, "my-site") {
		t.Fatalf("sites list after the refusals:\n%s (%v)", list, err)
	}
}
