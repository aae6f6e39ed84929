package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// keepaliveIdle is longer than the browser's idle timeout for a service
// worker (30 s without an event), with room for the browser's timer.
const keepaliveIdle = 45 * time.Second

// siteWithQuietPage is the demo site with a page more, /quiet/, whose
// script tag says data-keepalive="off".
func siteWithQuietPage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(demoDir)); err != nil {
		t.Fatal(err)
	}
	quiet := filepath.Join(dir, "quiet")
	if err := os.MkdirAll(quiet, 0o755); err != nil {
		t.Fatal(err)
	}
	const quietPage = `<!doctype html><html><head><meta charset="utf-8"><title>Quiet</title>
<script src="/verity.js" data-keepalive="off" async></script></head><body><p>This page lets the worker stop and holds none of its code.</p></body></html>`
	if err := os.WriteFile(filepath.Join(quiet, "index.html"), []byte(quietPage), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A visitor reading a page of the site keeps its worker running: the
// browser stops a worker after 30 s without an event, and the next page
// the visitor opens would then wait for the wasm's boot (or be answered
// by the gateway meanwhile). verity.js sends the worker a message now and
// then while the page is visible and used. A page whose script tag says
// data-keepalive="off" lets the worker go, which also shows that this
// test sees the browser stop an idle worker.
func TestWorkerKeptAliveOnOpenPage(t *testing.T) {
	dir := siteWithQuietPage(t)
	e := newEnv(t, envConfig{demoDir: dir})
	e.controlled()
	if !e.cacheStats().Running {
		t.Fatal("the Go worker is not running after the first visit")
	}
	// As in a visitor's browser: DevTools attached to a worker keeps it
	// from ever being stopped.
	if err := e.b.DetachWorkers(e.ctx(10 * time.Second)); err != nil {
		t.Fatal(err)
	}

	time.Sleep(keepaliveIdle)
	if !e.cacheStats().Running {
		t.Errorf("after %s on the site's page, the worker had been stopped (its Go side is not running): nothing kept it alive", keepaliveIdle)
	}
	if s, err := e.b.WorkerScores(e.ctx(10 * time.Second)); err == nil {
		t.Logf("what the kept worker holds: wasm memory %.1f MiB, JS heap %.1f MiB", float64(s.Memory.WasmBytes)/(1<<20), float64(s.Memory.JSHeapBytes)/(1<<20))
	}

	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/quiet/"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the Go worker running on the opted-out page", func() bool { return e.cacheStats().Running })
	// The browser checks for idle workers every few seconds: wait for the
	// stop through DevTools' list of versions, which sends the worker no
	// event.
	time.Sleep(keepaliveIdle)
	deadline := time.Now().Add(testutil.Scale(30 * time.Second))
	for runningWorkers(t, e) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
	}
	if e.cacheStats().Running {
		t.Errorf("on a page with data-keepalive=off, the worker still runs after %s and more: the browser did not stop it (is DevTools still attached?), so the first check proves nothing", keepaliveIdle)
	}
}

// A page coming back into view sends the keepalive at once: it starts a
// stopped worker, which boots its Go side with no request to wait for,
// so the visitor's next click finds it running.
func TestKeepaliveBootsStoppedWorker(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	e.stopWorkers()
	if e.cacheStats().Running {
		t.Fatal("the Go worker runs right after the stop")
	}
	if err := e.b.Keepalive(e.ctx(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the Go worker booted after the keepalive, with no request", func() bool {
		return e.cacheStats().Running
	})
}
