package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
)

// After the browser stops the worker (as it does when the worker is idle),
// the next fetch and the next navigation are answered at once from the
// network (the gateway) while the wasm boots in the background: no request
// waits for the Go runtime. Once it runs, requests are served verified from
// a node again.
func TestWorkerColdRestart(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	css := fileOf(t, e.files, "style.css")
	ids := e.nodeIDs()

	// A request only the worker that is about to stop has seen.
	const marker = "before-stop"
	if _, err := e.b.Fetch(e.ctx(30*time.Second), "/style.css?"+marker, nil); err != nil {
		t.Fatal(err)
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	markerSeen := hasURL(stats.Requests, marker)

	e.stopWorkers()
	// A fetch wakes the worker; the network answers it at once.
	res := e.fetchFile(css)
	if tr, _ := res.Timing("verity"); tr == "webtransport" {
		t.Errorf("/style.css right after a cold start came from a node (Server-Timing %q): it waited for the wasm to boot", res.Headers["server-timing"])
	}
	// The Go worker boots meanwhile, and serves the next requests.
	e.waitNodeServed(css, ids)
	if running := runningWorkers(t, e); running == 0 {
		t.Errorf("no worker is running after the fetch")
	}
	if markerSeen {
		stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if hasURL(stats.Requests, marker) {
			t.Errorf("the worker's stats still list the request made before the stop: it was not restarted")
		}
	} else {
		t.Logf("verity-stats does not keep query strings; the restart is checked through the DevTools worker status only")
	}

	// So does a navigation, after another stop.
	e.stopWorkers()
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/about/"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.b.Controlled(e.ctx(5 * time.Second)); err != nil || !ok {
		t.Fatalf("after a cold start the navigation is not controlled by the worker (controlled=%v, err=%v)", ok, err)
	}
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 || rs[0].EntryType != "navigation" {
		t.Fatalf("no navigation entry")
	}
	if tr, _ := rs[0].Timing("verity"); tr == "webtransport" {
		t.Errorf("navigation to /about/ right after a cold start came from a node (Server-Timing %s): it waited for the wasm to boot", describe(rs[0].ServerTiming))
	}
	e.visitTitle("about/index.html")
	e.waitNodeServed(css, ids)
}

// stopWorkers stops every service worker and checks they stopped. The
// page's keepalive message (verity.js, every 20 s) may start the worker
// again between the stop and the check: then it is stopped again.
func (e *env) stopWorkers() {
	e.t.Helper()
	for attempt := 1; ; attempt++ {
		if err := e.b.StopAllWorkers(e.ctx(20 * time.Second)); err != nil {
			e.t.Fatal(err)
		}
		vs, err := e.b.WorkerVersions(e.ctx(10 * time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		var running []string
		for _, v := range vs {
			if v.RunningStatus != serviceworker.VersionRunningStatusStopped {
				running = append(running, v.ScriptURL+" is "+string(v.RunningStatus))
			}
		}
		if len(running) == 0 {
			return
		}
		if attempt == 3 {
			e.t.Fatalf("after stopAllWorkers, three times: %s", strings.Join(running, ", "))
		}
	}
}

// waitNodeServed waits until the worker's Go side has booted and serves f
// (bypassing the cache) from one of the nodes ids.
func (e *env) waitNodeServed(f siteFile, ids map[string]bool) {
	e.t.Helper()
	var last string
	testutil.Eventually(e.t, 20*time.Second, "/"+f.Path+" served from a node after the cold start", func() bool {
		res := e.fetchFile(f)
		tr, _ := res.Timing("verity")
		n, _ := res.Timing("node")
		last = res.Headers["server-timing"]
		return tr == "webtransport" && ids[n]
	})
	e.t.Logf("/%s after the boot: %s", f.Path, last)
}

func hasURL(rs []browserRequest, part string) bool {
	for _, r := range rs {
		if strings.Contains(r.URL, part) {
			return true
		}
	}
	return false
}

func runningWorkers(t *testing.T, e *env) int {
	t.Helper()
	n, err := e.b.RunningWorkers(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A stopped worker answers a cached file from its cache without booting
// the wasm first, and boots it only once it has answered the requests it
// holds, from the network too. The test logs where a cold start's time goes (the boot's
// phases, in ms since the worker's thread started) and what the first
// requests cost: run it with -v to read the figures.
func TestColdStartPhases(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	e.cacheAll()
	css := fileOf(t, e.files, "style.css")
	app := fileOf(t, e.files, "app.js")
	ids := e.nodeIDs()
	t.Logf("first boot (at activation): %s", describe(e.cacheStats().Boot))

	for i := 0; i < 3; i++ {
		e.stopWorkers()
		cached := e.fetchFileCached(css) // default cache mode: the worker's cache
		if tr, _ := cached.Timing("verity"); tr != "cache" {
			t.Errorf("restart %d: cached /style.css: Server-Timing %q, want verity=cache", i, cached.Headers["server-timing"])
		}
		e.stopWorkers()
		net := e.fetchFile(app) // no-store: past the cache, to the network while the wasm boots
		var st cacheStats
		testutil.Eventually(t, 20*time.Second, "the Go worker running", func() bool {
			st = e.cacheStats()
			return st.Running
		})
		// The boot waited for the answer: it would have competed with it
		// for the worker's thread (bootWhenIdle), unless the answer took
		// longer than the wait's bound.
		b := st.Boot
		if b["start"] < b["answered"] && b["start"]-b["asked"] < 2000 {
			t.Errorf("restart %d: the wasm's boot started at %.1f ms, before the network's answer at %.1f ms (asked at %.1f ms): it competed with the page's answers", i, b["start"], b["answered"], b["asked"])
		}
		first := e.fetchFile(css) // the booted Go worker: session, transport, blocks
		second := e.fetchFile(css)
		ft, _ := first.Timing("verity")
		fn, _ := first.Timing("node")
		if ft != "webtransport" || !ids[fn] {
			t.Errorf("restart %d: /style.css after the boot: Server-Timing %q, want a node", i, first.Headers["server-timing"])
		}
		t.Logf("restart %d: cached file while stopped %.1f ms; network while booting %.1f ms (%s); boot %s; first Go request %.1f ms (%s), next %.1f ms (%s)",
			i, cached.Millis, net.Millis, net.Headers["server-timing"], describe(st.Boot),
			first.Millis, first.Headers["server-timing"], second.Millis, second.Headers["server-timing"])
	}
}

// A cold start whose HTTP cache lost the wasm (evicted, or cleared as the
// visit benchmark does) does not fetch it from the gateway again: the
// worker kept it in its own Cache Storage at the first boot.
func TestColdStartWasmFromCache(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	css := fileOf(t, e.files, "style.css")
	testutil.Eventually(t, 20*time.Second, "the Go worker running", func() bool { return e.cacheStats().Running })
	wasmGets := func() float64 {
		return e.gatewayMetrics().Sum("verity_gateway_requests_total", map[string]string{"kind": "wasm"})
	}
	before := wasmGets()
	if before == 0 {
		t.Fatalf("the gateway counted no wasm request for the first boot")
	}
	for i := range 2 {
		e.stopWorkers()
		if _, err := chromedp.Call(e.b.Context(), network.ClearBrowserCache, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		e.fetchFile(css)
		var st cacheStats
		testutil.Eventually(t, 20*time.Second, "the Go worker running after the restart", func() bool {
			st = e.cacheStats()
			return st.Running
		})
		if st.WasmFrom != "cache" {
			t.Errorf("restart %d: the wasm came from %q, want the worker's cache", i, st.WasmFrom)
		}
		t.Logf("restart %d: boot %s", i, describe(st.Boot))
	}
	if after := wasmGets(); after != before {
		t.Errorf("the gateway served the wasm %v more times after the HTTP cache was cleared", after-before)
	}
}

// A wasm in the worker's Cache Storage that is not the bytes its URL
// names (a script of the site can write that storage) is never run: the
// worker drops it and boots the gateway's wasm.
func TestColdStartRefusesTamperedWasm(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	css := fileOf(t, e.files, "style.css")
	testutil.Eventually(t, 20*time.Second, "the Go worker running", func() bool { return e.cacheStats().Running })
	n, err := browser.Call[int](e.ctx(10*time.Second), e.b, `async () => {
		const c = await caches.open('verity-wasm-v1');
		const keys = (await c.keys()).filter((k) => k.url.endsWith('.wasm'));
		for (const k of keys) await c.put(k, new Response(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), { headers: { 'Content-Type': 'application/wasm' } }));
		return keys.length;
	}`)
	if err != nil || n != 1 {
		t.Fatalf("replacing the stored wasm: %d entries, %v", n, err)
	}
	e.stopWorkers()
	e.fetchFile(css)
	var st cacheStats
	testutil.Eventually(t, 20*time.Second, "the Go worker running after the restart", func() bool {
		st = e.cacheStats()
		return st.Running
	})
	if st.WasmFrom != "network" || st.Corrupt != 1 {
		t.Errorf("after the stored wasm was replaced: from %q, corrupt %d; want the network's, 1", st.WasmFrom, st.Corrupt)
	}
}
