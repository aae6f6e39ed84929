package browser_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// startBrowser starts a browser for the test; a missing Chromium fails the
// test.
func startBrowser(t *testing.T, flags ...string) *browser.Browser {
	t.Helper()
	if err := browser.CheckInstalled(""); err != nil {
		t.Fatalf("%v", err)
	}
	b, err := browser.Start(t.Context(), browser.Config{
		UserDataDir: t.TempDir(),
		Flags:       flags,
		WaitTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

const swPage = `<!doctype html><title>sw test</title><p>hello</p>
<script>navigator.serviceWorker.register('/sw.js', {scope: '/'});</script>`

// The worker answers /blob with the server's blob and a Server-Timing
// header, counts the requests it served since it started, and answers
// verity-stats messages with that count.
const swScript = `
let served = 0;
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => {
	const u = new URL(e.request.url);
	if (u.pathname !== '/blob') return;
	e.respondWith(fetch('/raw-blob').then(async r => {
		served++;
		return new Response(await r.arrayBuffer(), {headers: {
			'Content-Type': 'application/octet-stream',
			'Server-Timing': 'verity;desc="test",node;desc="n1",blocks;desc="' + served + '",ttfb;dur=1.5',
		}});
	}));
});
self.addEventListener('message', e => {
	if (e.data && e.data.type === 'verity-stats') {
		e.ports[0].postMessage({requests: [{url: '/blob', transport: 'test', node: 'n1', blocks: served, bytes: 0, ttfbMs: 1, status: 200, error: ''}]});
	}
});`

func TestServiceWorkerHelpers(t *testing.T) {
	blob := make([]byte, 3<<20+17)
	rand.Read(blob)
	sum := sha256.Sum256(blob)
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, swPage)
	})
	mux.HandleFunc("/sw.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, swScript)
	})
	mux.HandleFunc("/raw-blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write(blob)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	origin := strings.Replace(srv.URL, "127.0.0.1", "swtest.localhost", 1)

	b := startBrowser(t)
	ctx := t.Context()
	if err := b.Navigate(ctx, origin+"/"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitController(ctx); err != nil {
		t.Fatal(err)
	}

	res, err := b.Fetch(ctx, "/blob", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Size != int64(len(blob)) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("fetch /blob: status %d size %d sha %s, want 200 %d %x", res.Status, res.Size, res.SHA256, len(blob), sum)
	}
	if tr, _ := res.Timing("verity"); tr != "test" {
		t.Errorf("Server-Timing transport = %q from header %q", tr, res.Headers["server-timing"])
	}
	if n, _ := res.Timing("node"); n != "n1" {
		t.Errorf("Server-Timing node = %q", n)
	}

	// The resource timing entry of an element load carries Server-Timing.
	if _, err := browser.Eval[bool](ctx, b, `new Promise((ok, fail) => { const i = new Image(); i.onerror = () => ok(true); i.src = '/blob?img'; })`); err != nil {
		t.Fatal(err)
	}
	rs, err := b.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		if strings.HasSuffix(r.Name, "/blob?img") {
			found = true
			if tr, _ := r.Timing("verity"); tr != "test" {
				t.Errorf("resource timing serverTiming = %+v", r.ServerTiming)
			}
		}
	}
	if !found {
		t.Errorf("no resource entry for /blob?img in %d entries", len(rs))
	}

	stats, err := b.WorkerStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Requests) != 1 || stats.Requests[0].Blocks != 2 {
		t.Fatalf("stats = %+v, want 2 served", stats)
	}

	// After stopping all workers the next fetch starts the worker anew:
	// its counter starts from zero again.
	if err := b.StopAllWorkers(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = b.Fetch(ctx, "/blob", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("fetch after stop: sha %s", res.SHA256)
	}
	if n, _ := res.Timing("blocks"); n != "1" {
		t.Errorf("after StopAllWorkers the worker kept its state: served = %q, want 1", n)
	}

	// A message with no reply ends with a clear error, not a hang.
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := b.Message(mctx, "unknown-type"); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Errorf("Message(unknown) error = %v", err)
	}
}

func TestWaitTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<title>no worker</title>")
	}))
	t.Cleanup(srv.Close)
	b := startBrowser(t)
	ctx := t.Context()
	if err := b.Navigate(ctx, srv.URL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := b.WaitFor(ctx, "never", `false`)
	if !errors.Is(err, browser.ErrTimeout) {
		t.Fatalf("WaitFor(false) = %v, want ErrTimeout", err)
	}
}

// A browser that never opens its tab is started twice, then the error says
// it timed out and carries the end of what the browser printed.
func TestStartTimeoutRetriesOnceAndShowsOutput(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	exe := filepath.Join(dir, "stuck-browser")
	script := "#!/bin/sh\necho start >> " + count + "\necho 'stuck at startup' >&2\nexec sleep 60\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := browser.Start(t.Context(), browser.Config{ExecPath: exe, UserDataDir: filepath.Join(dir, "profile"), StartTimeout: time.Second})
	if !errors.Is(err, browser.ErrTimeout) || !strings.Contains(err.Error(), "stuck at startup") {
		t.Fatalf("Start = %v, want a timeout carrying the browser's output", err)
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "start"); n != 2 {
		t.Fatalf("started %d times, want 2", n)
	}
}
