package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// What verity devnet prints after its URL is enough to publish a
// directory of one's own: the guide's steps, followed literally, serve it.
// --node-ports puts the nodes on the ports asked for.
func TestRunDevnetGuide(t *testing.T) {
	base := testutil.FreePorts(t, 3)
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	finished := make(chan error, 1)
	go func() {
		err := runDevnet(ctx, []string{"--data", dataDir, "--listen", "127.0.0.1:0", "--nodes", "1", "--node-ports", strconv.Itoa(base)}, pw, io.Discard)
		pw.Close()
		finished <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-finished; err != nil {
			t.Errorf("devnet: %v", err)
		}
	})
	var out []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out = append(out, sc.Text())
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	text := strings.Join(out, "\n")
	line := func(prefix string) string {
		for _, l := range out {
			if s, ok := strings.CutPrefix(l, prefix); ok {
				return s
			}
		}
		t.Fatalf("no %q line in:\n%s", prefix, text)
		return ""
	}
	if n := line("node 1: "); !strings.HasPrefix(n, "http://127.0.0.1:"+strconv.Itoa(base)+" ") {
		t.Errorf("node 1 at %q, want port %d", n, base)
	}
	gw := line("gateway: ")
	tokenPath := line("admin token: ")
	admin, err := os.ReadFile(tokenPath)
	if err != nil || !strings.HasPrefix(string(admin), "vat_") {
		t.Fatalf("admin token file %s: %q %v", tokenPath, admin, err)
	}
	if !strings.Contains(text, "sites create mysite --gateway "+gw) || !strings.Contains(text, "deploy ./my-site --site mysite --gateway "+gw) {
		t.Fatalf("guide lacks the steps:\n%s", text)
	}

	// The steps, as printed.
	site := filepath.Join(t.TempDir(), "my-site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>mine</h1>"), 0o644)
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
	defer ccancel()
	var tok bytes.Buffer
	if err := runSites(cctx, []string{"create", "mysite", "--gateway", gw, "--admin-token", strings.TrimSpace(string(admin))}, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := runDeploy(cctx, []string{site, "--site", "mysite", "--gateway", gw, "--token", strings.TrimSpace(tok.String())}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(gw, "http://"), ":")
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/", nil)
	req.Host = "mysite.localhost:" + port
	c := &http.Client{Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<h1>mine</h1>") {
		t.Fatalf("mysite after the guide's steps: %d %.200q", resp.StatusCode, body)
	}
}
