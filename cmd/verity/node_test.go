package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/node"
)

func TestRunNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpURL, done := startNodeCommand(t, ctx, "--data", t.TempDir())
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	c.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runNode: %v", err)
	}
}

func TestRunNodeBadFlags(t *testing.T) {
	if err := runNode(context.Background(), []string{"--public-host", "example.com", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil {
		t.Fatal("non-IP public host accepted")
	}
	if err := runNode(context.Background(), []string{"extra"}, io.Discard, io.Discard); err == nil {
		t.Fatal("extra argument accepted")
	}
}

// A CAR given with --car is imported before the node serves, and a damaged
// one stops the node before it starts serving.
func TestRunNodeImportsCAR(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	carPath := filepath.Join(dir, "site.car")
	var out strings.Builder
	if err := runImport(context.Background(), []string{"--car", carPath, site}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(out.String())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpURL, done := startNodeCommand(t, ctx, "--data", filepath.Join(dir, "node"), "--car", carPath)
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", httpURL+"/ipfs/"+root+"/index.html?format=car", nil)
	req.Header.Set("Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<h1>hello</h1>") {
		t.Fatalf("imported content not served: %d %q", resp.StatusCode, body)
	}
	c.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runNode: %v", err)
	}

	// Flip one byte of the last block: the CAR is refused, nothing served.
	data, err := os.ReadFile(carPath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	bad := filepath.Join(dir, "bad.car")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = runNode(context.Background(), []string{"--data", filepath.Join(dir, "node2"), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0", "--log-level", "warn", "--car", bad}, io.Discard, io.Discard)
	if !errors.Is(err, node.ErrBadCAR) {
		t.Fatalf("damaged CAR: err = %v, want ErrBadCAR", err)
	}
}

// startNodeCommand runs `verity node` on loopback ports with extra args and
// returns its HTTP URL (from its stdout) and its result channel.
func startNodeCommand(t *testing.T, ctx context.Context, extra ...string) (string, <-chan error) {
	t.Helper()
	args := append([]string{"--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runNode(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var httpURL string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "http: "); ok {
			httpURL = v
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if httpURL == "" {
		t.Fatalf("no http URL printed: %v", <-done)
	}
	return httpURL, done
}
