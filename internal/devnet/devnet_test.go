package devnet

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/web"
)

func start(t *testing.T, dir string) (*Devnet, *http.Client) {
	t.Helper()
	d, err := New(t.Context(), Config{
		DataDir: dir,
		Listen:  "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
	})
	addr := d.Gateway().Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return d, &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string) []byte {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

func TestDevnetServesDemoAndReusesData(t *testing.T) {
	dir := t.TempDir()
	d, c := start(t, dir)
	if len(d.Nodes()) != 2 {
		t.Fatalf("%d nodes", len(d.Nodes()))
	}
	site := d.SiteURL(SiteName)
	if !strings.HasPrefix(site, "http://demo.localhost:") {
		t.Fatalf("SiteURL = %q", site)
	}
	index := get(t, c, site)
	if !bytes.Contains(index, []byte(`<script src="/verity.js" async></script>`)) {
		t.Fatalf("index lacks the script tag: %s", index)
	}
	want, err := fs.ReadFile(web.Demo, "media/measurements.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) <= 1<<20 {
		t.Fatalf("demo's large file is only %d bytes", len(want))
	}
	if got := get(t, c, site+"media/measurements.csv"); !bytes.Equal(got, want) {
		t.Fatal("measurements.csv differs from the embedded file")
	}
	if s := get(t, c, site+".verity/v1/session"); !bytes.Contains(s, []byte(d.Root())) {
		t.Fatalf("session: %s", s)
	}
	root := d.Root()
	ids := []string{d.Nodes()[0].ID(), d.Nodes()[1].ID()}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d2, c2 := start(t, dir)
	if d2.Root() != root {
		t.Fatalf("root changed on rerun: %s → %s", root, d2.Root())
	}
	for i, n := range d2.Nodes() {
		if n.ID() != ids[i] {
			t.Fatalf("node %d identity changed on rerun", i+1)
		}
	}
	get(t, c2, d2.SiteURL(SiteName)+"about/")
}
