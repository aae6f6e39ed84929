package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
)

// cacheStats is the worker's verity-cache reply.
type cacheStats struct {
	Files      int                `json:"files"`
	Bytes      int64              `json:"bytes"`
	Hits       int                `json:"hits"`
	MemoryHits int                `json:"memoryHits"`
	SliceHits  int                `json:"sliceHits"` // ranges from a checked Blob of a large file
	Misses     int                `json:"misses"`
	Stored     int                `json:"stored"`
	Corrupt    int                `json:"corrupt"`
	Network    int                `json:"network"`
	Swept      int                `json:"swept"`
	HitMs      float64            `json:"hitMs"`
	Running    bool               `json:"running"`
	Boot       map[string]float64 `json:"boot"`
	WasmFrom   string             `json:"wasmFrom"`  // where the last boot's wasm came from
	Root       string             `json:"root"`      // the root of the worker script's session
	StaleNavs  int                `json:"staleNavs"` // navigations answered from a root past its session's ttl
	Reloaded   int                `json:"reloaded"`  // pages of a replaced root reloaded
}

func (e *env) cacheStats() cacheStats {
	e.t.Helper()
	raw, err := e.b.Message(e.ctx(10*time.Second), "verity-cache")
	if err != nil {
		e.t.Fatal(err)
	}
	var s cacheStats
	if err := json.Unmarshal(raw, &s); err != nil {
		e.t.Fatalf("verity-cache reply %s: %v", raw, err)
	}
	return s
}

// pageResources reloads the page and returns the worker-handled entries of
// its resource timing (navigation first), keyed by URL path.
func (e *env) reloadResources() map[string]browser.Resource {
	e.t.Helper()
	if err := e.b.Reload(e.ctx(30 * time.Second)); err != nil {
		e.t.Fatal(err)
	}
	e.visitTitle("index.html")
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]browser.Resource{}
	for _, r := range rs {
		if !strings.HasPrefix(r.Name, e.site+"/") || strings.Contains(r.Name, "/.verity/") ||
			strings.HasSuffix(r.Name, "/verity.js") || strings.HasSuffix(r.Name, "/verity-sw.js") {
			continue
		}
		out[strings.TrimPrefix(r.Name, e.site)] = r
	}
	if len(out) < 4 {
		e.t.Fatalf("the page loaded only %s through the worker", describe(out))
	}
	return out
}

// cacheAll makes sure the Go worker runs, reloads the page through it and
// waits until every resource the page loaded is in the worker's cache.
func (e *env) cacheAll() map[string]browser.Resource {
	e.t.Helper()
	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil { // boots the Go worker
		e.t.Fatal(err)
	}
	rs := e.reloadResources()
	var last cacheStats
	testutil.Eventually(e.t, 20*time.Second, "the page's resources in the worker's cache", func() bool {
		last = e.cacheStats()
		return last.Files >= len(rs)
	})
	return rs
}

// A repeat visit is served from the worker's verified cache: no byte moves
// from a node, and every resource says so in its Server-Timing.
func TestRepeatVisitFromCache(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	first := e.cacheAll()

	nodes0 := e.nodeMetrics()
	second := e.reloadResources()
	nodes1 := e.nodeMetrics()
	for p, r := range second {
		if tr, _ := r.Timing("verity"); tr != "cache" {
			t.Errorf("repeat visit %s: Server-Timing %s, want verity=cache", p, describe(r.ServerTiming))
		}
	}
	// The loader too comes from the worker's cache: the page's load event
	// does not wait for the gateway.
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	loader := false
	for _, r := range rs {
		if r.Name == e.site+"/verity.js" {
			loader = true
			if tr, _ := r.Timing("verity"); tr != "cache" {
				t.Errorf("repeat visit /verity.js: Server-Timing %s, want verity=cache", describe(r.ServerTiming))
			}
		}
	}
	if !loader {
		t.Errorf("the page did not load /verity.js")
	}
	t.Logf("navigation (to the load event): first visit through the worker %.1f ms, repeat visit %.1f ms",
		first["/"].Duration, second["/"].Duration)
	if a, b := nodeBytes(nodes0), nodeBytes(nodes1); b != a {
		t.Errorf("nodes' WebTransport bytes sent grew %v → %v during the repeat visit", a, b)
	}
	wt := map[string]string{"transport": "webtransport"}
	if a, b := sumNodes(nodes0, "verity_node_requests_total", wt), sumNodes(nodes1, "verity_node_requests_total", wt); b != a {
		t.Errorf("nodes' WebTransport requests grew %v → %v during the repeat visit", a, b)
	}
	// The cached bytes are the site's.
	for _, f := range assets(e.files) {
		if _, ok := second["/"+f.Path]; !ok {
			continue
		}
		res, err := e.b.Fetch(e.ctx(20*time.Second), "/"+f.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusOK || res.SHA256 != f.SHA256 {
			t.Errorf("/%s from the cache: status %d, sha256 %s, want %s", f.Path, res.Status, res.SHA256, f.SHA256)
		}
		if tr, _ := res.Timing("verity"); tr != "cache" {
			t.Errorf("/%s: Server-Timing %q, want verity=cache", f.Path, res.Headers["server-timing"])
		}
	}
	t.Logf("cache: %s", describe(e.cacheStats()))
}

// A cache entry whose bytes changed in storage is not served: the worker
// finds it fails its checksum, fetches the file from a node again and
// caches it anew.
func TestCorruptCacheEntryRefetched(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	e.cacheAll()
	css := fileOf(t, e.files, "style.css")
	res, err := e.b.Fetch(e.ctx(20*time.Second), "/style.css", nil)
	if err != nil {
		t.Fatal(err)
	}
	cid := strings.Trim(res.Headers["etag"], `"`)
	if tr, _ := res.Timing("verity"); tr != "cache" || cid == "" {
		t.Fatalf("/style.css: Server-Timing %q, ETag %q; want it cached", res.Headers["server-timing"], res.Headers["etag"])
	}

	// Flip one byte of the stored entry (same length).
	n, err := browser.Call[int](e.ctx(10*time.Second), e.b, `async (cid) => {
		const c = await caches.open('verity-blocks-v1');
		const key = location.origin + '/.verity/cache/ipfs/' + cid;
		const r = await c.match(key);
		if (!r) return -1;
		const b = new Uint8Array(await r.arrayBuffer());
		b[b.length >> 1] ^= 0xff;
		await c.put(key, new Response(b));
		return b.length;
	}`, cid)
	if err != nil || n != int(css.Size) {
		t.Fatalf("corrupting the cache entry of %s: %d bytes, %v", cid, n, err)
	}

	// A worker that runs keeps recent files in memory too: the next read
	// after a restart is the one that meets the stored bytes. The Go worker
	// is not running then, so the network answers.
	e.stopWorkers()
	res = e.fetchFileCached(css)
	if tr, _ := res.Timing("verity"); tr == "cache" {
		t.Errorf("/style.css after its entry was corrupted: Server-Timing %q: served from the cache", res.Headers["server-timing"])
	}
	if s := e.cacheStats(); s.Corrupt != 1 {
		t.Errorf("verity-cache corrupt = %d, want 1", s.Corrupt)
	}
	// The Go worker, booted meanwhile, fetches it from a node again, and
	// the cache keeps the verified bytes anew.
	var trs []string
	testutil.Eventually(t, 20*time.Second, "/style.css cached again", func() bool {
		res := e.fetchFileCached(css)
		tr, _ := res.Timing("verity")
		if len(trs) == 0 || trs[len(trs)-1] != tr {
			trs = append(trs, tr)
		}
		return tr == "cache"
	})
	t.Logf("/style.css served by %v", trs)
	if !slices.Contains(trs, "webtransport") {
		t.Errorf("/style.css was served by %v after the corruption, never fetched from a node again", trs)
	}
	e.cacheStats()  // the index is written (its writes are batched)
	e.stopWorkers() // from storage again
	if res := e.fetchFileCached(css); !strings.Contains(res.Headers["server-timing"], "cache") {
		t.Errorf("/style.css after a restart: Server-Timing %q, want verity=cache", res.Headers["server-timing"])
	}
}

// fetchFileCached fetches the site file in the page with the default cache
// mode (the worker's cache answers when it can) and checks its bytes.
func (e *env) fetchFileCached(f siteFile) browser.FetchResult {
	e.t.Helper()
	res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+f.Path, nil)
	if err != nil {
		e.t.Fatalf("fetch /%s: %v", f.Path, err)
	}
	if res.Status != http.StatusOK || res.Error != "" || res.SHA256 != f.SHA256 {
		e.t.Fatalf("fetch /%s: status %d, error %q, sha256 %s, want 200 and %s", f.Path, res.Status, res.Error, res.SHA256, f.SHA256)
	}
	return res
}

// After a deploy that changes one file, the next visit fetches that file
// from a node and serves every unchanged one from the cache: the worker
// resolves the cached paths in the new root's (verified) directory.
func TestRedeployFetchesOnlyChanged(t *testing.T) {
	e := newEnv(t, envConfig{})
	// A gateway with a short session ttl, so the worker sees the new root
	// soon after the deploy.
	const ttl = 2 * time.Second
	// It is on the devnet's bus, so the nodes take its vouchers.
	e.useGateway(gateway.Config{
		Sites:      e.net.Sites(),
		Nodes:      e.net.Coordinator(),
		Accounts:   e.net.Coordinator(),
		Bus:        e.net.Bus(),
		Name:       "gateway-short-ttl",
		DataDir:    t.TempDir(),
		SessionTTL: ttl,
	})
	e.controlled()
	first := e.cacheAll()
	if _, ok := first["/style.css"]; !ok {
		t.Fatalf("the front page does not load /style.css: %s", describe(first))
	}

	// Deploy the site again with style.css changed.
	site := filepath.Join(t.TempDir(), "site")
	if err := os.CopyFS(site, os.DirFS(e.dir)); err != nil {
		t.Fatal(err)
	}
	css, err := os.ReadFile(filepath.Join(site, "style.css"))
	if err != nil {
		t.Fatal(err)
	}
	css = append(css, []byte("\n/* deployed again */\n")...)
	if err := os.WriteFile(filepath.Join(site, "style.css"), css, 0o644); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), site, &car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.net.Control().Deploy(e.ctx(30*time.Second), devnet.SiteName, &car); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the new root published", func() bool {
		return e.session().Root == root.String()
	})
	// The worker keeps a session for its ttl: let the one it holds expire.
	time.Sleep(ttl + 500*time.Millisecond)

	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil { // the Go worker runs
		t.Fatal(err)
	}
	// The first navigation is answered from the last root the worker knew
	// while its session reloads; the next one sees the deploy.
	e.reloadResources()
	testutil.Eventually(t, 20*time.Second, "the worker's session on the new root", func() bool {
		return e.cacheStats().Root == root.String()
	})
	nodes0 := e.nodeMetrics()
	second := e.reloadResources()
	nodes1 := e.nodeMetrics()
	for p, r := range second {
		tr, _ := r.Timing("verity")
		want := "cache"
		if p == "/style.css" {
			want = "webtransport"
		}
		if tr != want {
			t.Errorf("after the deploy %s: Server-Timing %s, want verity=%s", p, describe(r.ServerTiming), want)
		}
	}
	got, err := browser.Eval[string](e.ctx(10*time.Second), e.b,
		`fetch('/style.css').then(r => r.text()).then(t => t.slice(-40))`)
	if err != nil || !strings.Contains(got, "deployed again") {
		t.Errorf("/style.css after the deploy ends %q (%v), want the new version", got, err)
	}
	moved := nodeBytes(nodes1) - nodeBytes(nodes0)
	var unchanged int64
	for p := range second {
		if f, ok := findFile(e.files, strings.TrimPrefix(p, "/")); ok && p != "/style.css" {
			unchanged += f.Size
		}
	}
	t.Logf("after the deploy: %v bytes from nodes (style.css %d bytes, unchanged files %d bytes)", moved, len(css), unchanged)
	if moved <= 0 {
		t.Errorf("no bytes moved from nodes after the deploy: the changed file was not fetched from a node")
	}
	// The changed file and the directory blocks along the way, nothing of
	// the unchanged files.
	if limit := float64(len(css) + 32<<10); moved > limit {
		t.Errorf("%v bytes moved from nodes after the deploy, want at most %v (style.css and directories)", moved, limit)
	}
}

func findFile(files []siteFile, rel string) (siteFile, bool) {
	if rel == "" || strings.HasSuffix(rel, "/") {
		rel += "index.html"
	}
	for _, f := range files {
		if f.Path == rel {
			return f, true
		}
	}
	return siteFile{}, false
}

// TestRepeatVisitTiming logs how long a repeat visit of the front page
// takes (navigation start to the load event, median of five) with the nodes
// 20 ms away: from the worker's cache, through the warm worker without its
// cache (every file from a node, as before the cache), and from the gateway
// alone (the worker bypassed). Run it with -v to read the figures.
func TestRepeatVisitTiming(t *testing.T) {
	e := newEnv(t, envConfig{nodeLink: &netem.Link{Delay: 10 * time.Millisecond}})
	e.controlled()
	e.cacheAll()
	const runs = 5
	measure := func(what string, before func()) float64 {
		var ms []float64
		for i := 0; i < runs; i++ {
			if before != nil {
				before()
			}
			rs := e.reloadResources()
			ms = append(ms, rs["/"].Duration)
		}
		sort.Float64s(ms)
		t.Logf("%s: median %.1f ms of %v", what, ms[runs/2], ms)
		return ms[runs/2]
	}
	cached := measure("repeat visit from the worker's cache", nil)
	st := e.cacheStats()
	t.Logf("cache reads: %d hits (%d from memory), %.1f ms each on average", st.Hits, st.MemoryHits, st.HitMs/float64(max(st.Hits, 1)))
	dropCache := func() {
		if raw, err := e.b.Message(e.ctx(10*time.Second), "verity-cache-clear"); err != nil || !strings.Contains(string(raw), `"ok":true`) {
			t.Fatalf("verity-cache-clear: %s, %v", raw, err)
		}
	}
	nodes := measure("repeat visit through the warm worker, cache dropped before each", dropCache)
	if err := e.b.BypassServiceWorker(e.ctx(10*time.Second), true); err != nil {
		t.Fatal(err)
	}
	gw := measure("repeat visit from the gateway alone (worker bypassed)", nil)
	if err := e.b.BypassServiceWorker(e.ctx(10*time.Second), false); err != nil {
		t.Fatal(err)
	}
	t.Logf("cache %.1f ms, nodes %.1f ms, gateway %.1f ms", cached, nodes, gw)
}

// Bytes in the worker's cache that its index does not name (the browser
// stopped the worker between a file's write and the index's) are deleted
// when the worker starts again, and what the index names is kept.
func TestOrphanCacheEntriesSwept(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	e.cacheAll()
	css := fileOf(t, e.files, "style.css")
	res := e.fetchFileCached(css)
	if tr, _ := res.Timing("verity"); tr != "cache" {
		t.Fatalf("/style.css: Server-Timing %q, want it cached", res.Headers["server-timing"])
	}
	const orphan = "bafkreiorphanorphanorphanorphanorphanorphanorphanorphanorp"
	has := func(cid string) bool {
		ok, err := browser.Call[bool](e.ctx(10*time.Second), e.b, `async (cid) => {
			const c = await caches.open('verity-blocks-v1');
			return !!(await c.match(location.origin + '/.verity/cache/ipfs/' + cid));
		}`, cid)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if _, err := browser.Call[bool](e.ctx(10*time.Second), e.b, `async (cid) => {
		const c = await caches.open('verity-blocks-v1');
		await c.put(location.origin + '/.verity/cache/ipfs/' + cid, new Response(new Uint8Array(1 << 20)));
		return true;
	}`, orphan); err != nil || !has(orphan) {
		t.Fatalf("writing an entry no index names: %v", err)
	}
	e.stopWorkers()
	e.fetchFileCached(css) // starts the worker
	testutil.Eventually(t, 30*time.Second, "the orphan entry deleted", func() bool { return !has(orphan) })
	if cid := strings.Trim(res.Headers["etag"], `"`); !has(cid) {
		t.Errorf("the sweep deleted %s, which the index names", cid)
	}
	if s := e.cacheStats(); s.Swept != 1 {
		t.Errorf("verity-cache swept = %d, want 1", s.Swept)
	}
}

// shortTTLGateway makes the page's gateway one with a session ttl of ttl,
// on the devnet's bus (so the nodes take its vouchers), and returns ttl.
func (e *env) shortTTLGateway(ttl time.Duration) time.Duration {
	e.t.Helper()
	e.useGateway(gateway.Config{
		Sites:      e.net.Sites(),
		Nodes:      e.net.Coordinator(),
		Accounts:   e.net.Coordinator(),
		Bus:        e.net.Bus(),
		Name:       "gateway-short-ttl",
		DataDir:    e.t.TempDir(),
		SessionTTL: ttl,
	})
	return ttl
}

// deployMarked deploys the site again with a marker in index.html (a meta
// element) and in style.css (a custom property), both "2", and waits until
// the gateway's session names the new root.
func (e *env) deployMarked() string {
	e.t.Helper()
	return e.deployEdits(map[string][2]string{
		"index.html": {"<head>", "<head>\n<meta name=\"deploy\" content=\"2\">"},
		"style.css":  {"", "\n:root{--deploy:\"2\"}\n"},
	})
}

// deployEdits deploys the site again with edits (file -> [old, new]; an
// empty old appends new) and waits until the gateway's session names the
// new root, which it returns.
func (e *env) deployEdits(edits map[string][2]string) string {
	e.t.Helper()
	site := filepath.Join(e.t.TempDir(), "site")
	if err := os.CopyFS(site, os.DirFS(e.dir)); err != nil {
		e.t.Fatal(err)
	}
	for name, ed := range edits {
		p := filepath.Join(site, filepath.FromSlash(name))
		b, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		if ed[0] == "" {
			b = append(b, ed[1]...)
		} else if !bytes.Contains(b, []byte(ed[0])) {
			e.t.Fatalf("%s has no %q", name, ed[0])
		} else {
			b = bytes.Replace(b, []byte(ed[0]), []byte(ed[1]), 1)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	var car bytes.Buffer
	root, err := importer.WriteCAR(e.t.Context(), site, &car, importer.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.net.Control().Deploy(e.ctx(30*time.Second), devnet.SiteName, &car); err != nil {
		e.t.Fatal(err)
	}
	testutil.Eventually(e.t, 30*time.Second, "the new root published", func() bool {
		return e.session().Root == root.String()
	})
	return root.String()
}

// dropCached deletes the Cache Storage entry of path under the newest root
// of the worker's index, which keeps naming it, as an eviction the index
// write did not follow leaves it.
func (e *env) dropCached(path string) {
	e.t.Helper()
	n, err := browser.Call[int](e.ctx(10*time.Second), e.b, `async (p) => {
		const c = await caches.open('verity-blocks-v1');
		const idx = await (await c.match('/.verity/cache/index')).json();
		const e = idx.roots[0].paths[p];
		return e && await c.delete('/.verity/cache/ipfs/' + e.c) ? 1 : 0;
	}`, path)
	if err != nil || n != 1 {
		e.t.Fatalf("dropping %s from the cache: %d, %v", path, n, err)
	}
}

// pageDeploy says which deploy the loaded page's document and its
// stylesheet come from: "1" (the first) or "2" (deployMarked's) each.
func (e *env) pageDeploy() (doc, css string) {
	e.t.Helper()
	doc, css, err := e.tryPageDeploy()
	if err != nil {
		e.t.Fatal(err)
	}
	return doc, css
}

// tryPageDeploy is pageDeploy, failing while the page is being replaced or
// has not loaded yet (its stylesheet may still be on its way).
func (e *env) tryPageDeploy() (doc, css string, err error) {
	r, err := browser.Eval[[]string](e.ctx(10*time.Second), e.b, `(() => {
		if (document.readyState !== 'complete') return [];
		const m = document.querySelector('meta[name=deploy]');
		const v = getComputedStyle(document.documentElement).getPropertyValue('--deploy').trim();
		return [m ? m.content : '1', v ? v.replace(/"/g, '') : '1'];
	})()`)
	if err != nil || len(r) != 2 {
		return "", "", fmt.Errorf("the page's deploy: %v %v", r, err)
	}
	return r[0], r[1], nil
}

// A repeat visit whose session is past its ttl is answered from the cache
// under the last root the worker knew, without waiting for the gateway,
// while the session reloads: that page is the earlier deploy, document
// and files alike, never a mix; the navigation after the reload is the new
// deploy.
func TestStaleNavigationOneDeploy(t *testing.T) {
	e := newEnv(t, envConfig{})
	ttl := e.shortTTLGateway(2 * time.Second)
	e.controlled()
	e.cacheAll()
	root := e.deployMarked()
	time.Sleep(ttl + 500*time.Millisecond) // the worker's session expires

	rs := e.reloadResources()
	if st := e.cacheStats(); st.StaleNavs != 1 || st.Reloaded != 0 {
		t.Errorf("%d navigations answered past the ttl, %d pages reloaded; want 1 and 0", st.StaleNavs, st.Reloaded)
	}
	if doc, css := e.pageDeploy(); doc != "1" || css != "1" {
		t.Errorf("the navigation past the session's ttl: document of deploy %s, stylesheet of deploy %s; want the earlier deploy for both", doc, css)
	}
	for p, r := range rs {
		if tr, _ := r.Timing("verity"); tr != "cache" {
			t.Errorf("the navigation past the session's ttl: %s: Server-Timing %s, want verity=cache", p, describe(r.ServerTiming))
		}
	}
	testutil.Eventually(t, 20*time.Second, "the worker's session on the new root", func() bool {
		return e.cacheStats().Root == root
	})
	e.reloadResources()
	if doc, css := e.pageDeploy(); doc != "2" || css != "2" {
		t.Errorf("the navigation after the session reloaded: document of deploy %s, stylesheet of deploy %s; want the new deploy for both", doc, css)
	}
}

// A page answered from an earlier root that needs a file this root's
// cache lacks is not given the new deploy's file: once the session names
// the new root, the worker reloads the page, which is then the new deploy
// throughout.
func TestStalePageReloadedForNewDeploy(t *testing.T) {
	e := newEnv(t, envConfig{})
	ttl := e.shortTTLGateway(2 * time.Second)
	e.controlled()
	e.cacheAll()
	// The earlier root's cache loses app.js (a defer script of the page).
	e.dropCached("/app.js")
	e.stopWorkers() // nor in the worker's memory
	root := e.deployMarked()
	time.Sleep(ttl + 500*time.Millisecond)

	if err := e.b.Reload(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the page reloaded as the new deploy", func() bool {
		doc, css, err := e.tryPageDeploy()
		if err != nil {
			return false
		}
		if doc != css {
			t.Fatalf("a page of two deploys: document %s, stylesheet %s", doc, css)
		}
		return doc == "2"
	})
	if st := e.cacheStats(); st.Root != root || st.StaleNavs != 1 || st.Reloaded != 1 {
		t.Errorf("the worker's session root %s, %d navigations answered past the ttl, %d pages reloaded; want the new root %s, 1 and 1", st.Root, st.StaleNavs, st.Reloaded, root)
	}
}

// A media file read whole through a range (a player's first request,
// bytes=0-) is kept in the worker's cache, and later ranges of it are
// answered from there, by the running worker and by a stopped one, with
// the file's bytes and no byte from a node or the gateway. A range the
// page stops reading is not read on by the worker to fill the cache: the
// nodes stop, and nothing is stored.
func TestRangesFromCache(t *testing.T) {
	e := newEnv(t, envConfig{})
	// A session that outlives the test, so the stopped worker's script
	// knows the root without asking the gateway.
	e.useGateway(gateway.Config{
		Sites:      e.net.Sites(),
		Nodes:      e.net.Coordinator(),
		Accounts:   e.net.Coordinator(),
		Bus:        e.net.Bus(),
		Name:       "gateway-long-ttl",
		DataDir:    t.TempDir(),
		SessionTTL: 10 * time.Minute,
	})
	mp4 := fileOf(t, e.files, videoMP4)
	data, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(videoMP4)))
	if err != nil {
		t.Fatal(err)
	}
	e.controlled()
	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil { // boots the Go worker
		t.Fatal(err)
	}
	url := "/" + videoMP4
	// What the nodes sent to browsers (their HTTP API also serves the
	// coordinator's audits).
	sent := func() float64 {
		m := e.nodeMetrics()
		return sumNodes(m, "verity_node_bytes_sent_total", map[string]string{"transport": "webtransport"}) +
			sumNodes(m, "verity_node_bytes_sent_total", map[string]string{"transport": "webrtc"})
	}

	// The page takes the first chunk of bytes=0- and cancels.
	sent0, files0 := sent(), e.cacheStats().Files
	took, err := browser.Call[int](e.ctx(30*time.Second), e.b, `async (url) => {
		const r = await fetch(url, {headers: {Range: 'bytes=0-'}});
		const rd = r.body.getReader();
		const {value} = await rd.read();
		await rd.cancel();
		return value ? value.length : 0;
	}`, url)
	if err != nil {
		t.Fatal(err)
	}
	// The nodes' count settles once the stream is stopped.
	var last float64
	testutil.Eventually(t, 20*time.Second, "the nodes' bytes to settle", func() bool {
		time.Sleep(500 * time.Millisecond)
		now := sent()
		settled := now == last
		last = now
		return settled
	})
	t.Logf("the page took %d bytes of bytes=0- and cancelled; the nodes sent %.0f", took, last-sent0)
	if last-sent0 >= float64(len(data)) {
		t.Errorf("the nodes sent %.0f bytes for a range the page stopped after %d: the whole file (%d) was read on", last-sent0, took, len(data))
	}
	if s := e.cacheStats(); s.Files != files0 {
		t.Errorf("a range the page stopped was stored: %d files cached, %d before", s.Files, files0)
	}
	// The whole file through bytes=0- is stored.
	res, err := e.b.Fetch(e.ctx(60*time.Second), url, &browser.FetchOptions{Headers: map[string]string{"Range": "bytes=0-"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusPartialContent || res.Error != "" || res.SHA256 != mp4.SHA256 {
		t.Fatalf("bytes=0-: status %d, %d bytes, error %q; want 206 and the whole file", res.Status, res.Size, res.Error)
	}
	testutil.Eventually(t, 20*time.Second, "the MP4 in the worker's cache", func() bool {
		return e.cacheStats().Files > files0
	})

	nodes0, gw0 := sent(), bytesServed(e.gatewayMetrics(), "asset")
	check := func(what string, from, to int) {
		t.Helper()
		rng := fmt.Sprintf("bytes=%d-", from)
		if to >= 0 {
			rng += strconv.Itoa(to)
		}
		if to < 0 || to >= len(data) {
			to = len(data) - 1
		}
		res, err := e.b.Fetch(e.ctx(60*time.Second), url, &browser.FetchOptions{Headers: map[string]string{"Range": rng}})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data[from : to+1])
		if res.Status != http.StatusPartialContent || res.Error != "" || res.SHA256 != hex.EncodeToString(sum[:]) ||
			res.Headers["content-range"] != fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)) {
			t.Fatalf("%s, %s: status %d, %d bytes, error %q, Content-Range %q; want 206 and bytes %d-%d", what, rng, res.Status, res.Size, res.Error, res.Headers["content-range"], from, to)
		}
		if tr, _ := res.Timing("verity"); tr != "cache" {
			t.Errorf("%s, %s: served by %q, not the cache (Server-Timing %s)", what, rng, tr, res.Headers["server-timing"])
		}
	}
	check("worker running", 1000000, 1065535)
	check("worker running, past the end", len(data)-100, len(data)+5000)
	// The file is too large to be kept in memory: after the first range
	// read and checked it whole, the next came from a slice of its entry.
	if s := e.cacheStats(); s.SliceHits == 0 {
		t.Errorf("no range of the %d-byte file came from a slice of its checked entry: %+v", len(data), s)
	}
	if err := e.b.StopRunningWorkers(e.ctx(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	check("worker stopped first", 3000000, -1)
	if n, g := sent()-nodes0, bytesServed(e.gatewayMetrics(), "asset")-gw0; n != 0 || g != 0 {
		t.Errorf("ranges of the cached file moved %.0f bytes from the nodes and %.0f from the gateway", n, g)
	}
	// A conditional range is the Go worker's to answer, also while it
	// boots: an If-Range naming another version gets the whole file.
	if err := e.b.StopRunningWorkers(e.ctx(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ir, err := e.b.Fetch(e.ctx(60*time.Second), url, &browser.FetchOptions{Headers: map[string]string{"Range": "bytes=0-99", "If-Range": `"bafkreiother"`}})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Status != http.StatusOK || ir.SHA256 != mp4.SHA256 {
		t.Errorf("If-Range of another version, worker stopped first: status %d, %d bytes; want 200 and the whole file", ir.Status, ir.Size)
	}
}
