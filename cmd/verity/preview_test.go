package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// verity deploy --preview waits until the nodes hold the preview, then
// prints the root and the preview's own URL, which serves that version while the site's origin keeps its own;
// verity sites promote publishes it.
func TestDeployPreviewAndPromoteCommands(t *testing.T) {
	const admin = cliAdmin
	gw := startCLINetwork(t)
	run := func(cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, error) {
		t.Helper()
		return runCmd(t, cmd, args...)
	}
	get := func(host string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	token, err := run(runSites, "create", "blog", "--gateway", gw, "--admin-token", admin)
	if err != nil {
		t.Fatal(err)
	}
	site := func(content string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if _, err := run(runDeploy, site("<h1>one</h1>"), "--site", "blog", "--gateway", gw, "--token", token); err != nil {
		t.Fatal(err)
	}
	out, err := run(runDeploy, site("<h1>two</h1>"), "--site", "blog", "--gateway", gw, "--token", token, "--preview", "--preview-ttl", "2d")
	lines := strings.Split(out, "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[1], "http://"+lines[0]+".preview.localhost:") {
		t.Fatalf("deploy --preview: %q %v", out, err)
	}
	root := lines[0]
	u, _ := url.Parse(lines[1])
	if got := get(u.Hostname()); got != "<h1>two</h1>" {
		t.Fatalf("preview origin serves %q", got)
	}
	if got := get("blog.localhost"); got != "<h1>one</h1>" {
		t.Fatalf("site origin serves %q", got)
	}
	// deploy --preview returned once the nodes hold it: promote at once.
	out, err = run(runSites, "promote", "blog", root, "--gateway", gw, "--token", token)
	if err != nil || !strings.Contains(out, "version 2, root "+root) {
		t.Fatalf("promote printed %q", out)
	}
	testutil.Eventually(t, testutil.Scale(10*time.Second), "the site serves the promoted root", func() bool { return get("blog.localhost") == "<h1>two</h1>" })
	if _, err := run(runDeploy, site("x"), "--site", "blog", "--gateway", gw, "--token", token, "--preview", "--preview-ttl", "soon"); err == nil {
		t.Fatal("a bad --preview-ttl was taken")
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "7d": 7 * 24 * time.Hour, "48h": 48 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseTTL(in); err != nil || got != want {
			t.Errorf("parseTTL(%q) = %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1h", "d", "7days", "0"} {
		if _, err := parseTTL(in); err == nil {
			t.Errorf("parseTTL(%q) took it", in)
		}
	}
}
