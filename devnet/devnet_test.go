package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/control"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/web"
)

func start(t *testing.T, dir string) (*Devnet, *http.Client) {
	t.Helper()
	return startWith(t, Config{DataDir: dir})
}

func startWith(t *testing.T, cfg Config) (*Devnet, *http.Client) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := New(t.Context(), cfg)
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
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	if err := d.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
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
	var sess api.Session
	if err := json.Unmarshal(get(t, c, site+".verity/v1/session"), &sess); err != nil || sess.Root != d.Root() || len(sess.Nodes) != 2 {
		t.Fatalf("session %+v: %v", sess, err)
	}
	// The nodes joined over WebSocket and heartbeat their status.
	live, err := d.Coordinator().LiveNodes(t.Context())
	if err != nil || len(live) != 2 || live[0].Status.Blocks == 0 || live[0].Status.FreeDisk == 0 {
		t.Fatalf("live nodes %+v: %v", live, err)
	}
	// The loopback visitor and nodes share the devnet table's ASN.
	if info := d.Coordinator().Router().Client(netip.MustParseAddr("127.0.0.1")); info.ASN != 64511 {
		t.Fatalf("loopback ASN %d", info.ASN)
	}
	if rec, err := d.Sites().Record(t.Context(), SiteName); err != nil || rec.Version != 1 || rec.Root != d.Root() || rec.Account != control.DefaultAccount {
		t.Fatalf("site record %+v: %v", rec, err)
	}
	// The demo site's account is funded by the faucet.
	if a, err := d.Coordinator().Ledger().Account(t.Context(), control.DefaultAccount); err != nil || a.Balance < AccountFunds/2 || a.Frozen {
		t.Fatalf("account %+v: %v", a, err)
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
	// What the gateway served in the first run was charged at its shutdown.
	if a, err := d2.Coordinator().Ledger().Account(t.Context(), control.DefaultAccount); err != nil || a.Charged < uint64(len(want)) {
		t.Fatalf("account after rerun %+v: %v, want ≥ %d charged", a, err, len(want))
	}
	// The same content published again is not a new version.
	if rec, err := d2.Sites().Record(t.Context(), SiteName); err != nil || rec.Version != 1 {
		t.Fatalf("site record after rerun %+v: %v", rec, err)
	}
}

func TestDevnetASNTableFlag(t *testing.T) {
	if _, err := New(t.Context(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ASNTable: "/nonexistent/table.tsv",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil {
		t.Fatal("missing ASN table accepted")
	}
}

// lockedBuffer is a log sink safe for the devnet's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Stopping the devnet (Ctrl-C) stops the coordinator before the nodes, so
// nodes leaving is no loss to repair: nothing after the stop is logged as
// a warning or error (no re-replication, no under-replicated roots).
func TestDevnetStopsQuietly(t *testing.T) {
	var logs lockedBuffer
	d, err := New(t.Context(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(t.Context(), testutil.Scale(20*time.Second))
	defer wcancel()
	if err := d.WaitReady(wctx); err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	// A first visit through the gateway: what it serves is charged to
	// the site's account when the devnet stops.
	req, _ := http.NewRequest(http.MethodGet, d.Gateway().URL()+"/", nil)
	req.Host = "demo.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	before := len(logs.String())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	after := logs.String()[before:]
	for _, line := range strings.Split(after, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("logged on stop: %s", line)
		}
	}
	if !strings.Contains(after, "node stopped") {
		t.Errorf("nodes did not stop:\n%s", after)
	}
}
