package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
)

// A preview deploy has an origin of its own, where the worker installs
// and serves the preview's files from the nodes like any site's; the
// site's own origin does not have them.
func TestWorkerServesPreview(t *testing.T) {
	e := newEnv(t, envConfig{})
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(demoDir)); err != nil {
		t.Fatal(err)
	}
	const marker = "only in the preview\n"
	if err := os.WriteFile(filepath.Join(dir, "preview.txt"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	root, err := importer.WriteCAR(e.ctx(30*time.Second), dir, &car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.net.Control().DeployPreview(e.ctx(30*time.Second), devnet.SiteName, "", 0, &car)
	if err != nil || rec.Root != root.String() {
		t.Fatalf("preview deploy: %+v %v", rec, err)
	}
	testutil.Eventually(t, 60*time.Second, "the nodes pin the preview", func() bool {
		p, _ := e.net.Coordinator().Placement(rec.Root)
		return len(p.Holders(coordinator.HolderPinned)) == rec.Replicas
	})
	resp, err := browser.NewHTTPClient(10 * time.Second).Get(e.site + "/preview.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the site's origin has the preview's file: %d", resp.StatusCode)
	}
	e.site = e.net.SiteURL(gateway.PreviewLabel(rec.Root))
	e.site = e.site[:len(e.site)-1]
	e.controlled()
	res, err := e.b.Fetch(e.ctx(30*time.Second), "/preview.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := res.Timing("verity")
	if res.Status != 200 || res.Size != int64(len(marker)) || tr == "first-visit" || tr == "" {
		t.Fatalf("preview.txt on the preview origin: %d, %d bytes, served by %q", res.Status, res.Size, tr)
	}
	if s := e.session(); s.Root != rec.Root {
		t.Fatalf("the worker's session names %s, want the preview %s", s.Root, rec.Root)
	}
}
