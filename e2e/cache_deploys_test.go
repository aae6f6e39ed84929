package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
)

// The about page and the stylesheet, changed by a deploy.
var aboutDeploy2 = map[string][2]string{
	"about/index.html": {"<head>", "<head>\n<meta name=\"deploy\" content=\"2\">"},
	"style.css":        {"", "\n:root{--deploy:\"2\"}\n"},
}

// waitOneDeploy waits for the loaded page to be the new deploy, failing at
// once if its document and stylesheet ever come from two deploys.
func (e *env) waitOneDeploy(root string) {
	e.t.Helper()
	testutil.Eventually(e.t, 30*time.Second, "the about page of the new deploy", func() bool {
		doc, css, err := e.tryPageDeploy()
		if err != nil {
			return false
		}
		if doc != css {
			e.t.Fatalf("a page of two deploys: document of deploy %s, stylesheet of deploy %s (root now %s)", doc, css, root)
		}
		return doc == "2"
	})
}

// A navigation the Go worker answers from its session past its ttl (it
// serves on with the expired root for a minute while it reloads) is of a
// root no current session named: the page is stale, like one the cache
// answered past the ttl. A file it needs that its root's cache lacks then
// reloads it, and is not taken from the new deploy.
func TestGoNavigationPastTTLIsStale(t *testing.T) {
	e := newEnv(t, envConfig{})
	ttl := e.shortTTLGateway(2 * time.Second)
	e.controlled()
	e.cacheAll() // "/" and its files, under the first root
	// The first root's cache lacks style.css, and the worker's memory too.
	e.dropCached("/style.css")
	e.stopWorkers()
	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil { // the Go worker runs, session of the first root
		t.Fatal(err)
	}
	root := e.deployEdits(aboutDeploy2)
	time.Sleep(ttl + 500*time.Millisecond) // both sessions past their ttl
	if st := e.cacheStats(); !st.Running {
		t.Skip("the browser stopped the worker meanwhile; the Go worker must be running for this sequence")
	}
	// A page not visited before: no root's cache has /about/, so the Go
	// worker answers the navigation.
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/about/"); err != nil {
		t.Fatal(err)
	}
	e.waitOneDeploy(root)
	t.Logf("cache: %s", describe(e.cacheStats()))
}

// While the Go worker is stopped, a navigation the cache cannot answer
// under the session the script holds (within its ttl) goes to the
// gateway, which answers from its current root. A deploy within that ttl
// must not leave the page with the new deploy's document and the held
// root's files from the cache: its files are taken under a session loaded
// with it.
func TestNetworkNavigationNotUnderHeldRoot(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.shortTTLGateway(90 * time.Second) // the script's session outlives the deploy
	e.controlled()
	e.cacheAll() // "/" and its files (style.css) under the first root
	root := e.deployEdits(aboutDeploy2)
	e.stopWorkers() // the browser stopped the idle worker
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/about/"); err != nil {
		t.Fatal(err)
	}
	e.waitOneDeploy(root)
	t.Logf("cache: %s", describe(e.cacheStats()))
}

// A stale page that needs a file its root's cache lacks is reloaded and
// that file refused; until the reload replaces it, it keeps its root: a
// request it makes meanwhile is answered from its root's cache or
// refused, never fetched under the new root.
func TestReplacedStalePageGetsNoNewDeploy(t *testing.T) {
	e := newEnv(t, envConfig{})
	ttl := e.shortTTLGateway(2 * time.Second)
	e.controlled()
	e.cacheAll()
	root := e.deployEdits(aboutDeploy2)
	time.Sleep(ttl + 500*time.Millisecond)
	// A repeat visit past the ttl: the page of the earlier deploy, from the
	// cache (TestStaleNavigationOneDeploy).
	e.reloadResources()
	if doc, css := e.pageDeploy(); doc != "1" || css != "1" {
		t.Fatalf("the stale navigation: document %s, stylesheet %s; want 1 and 1", doc, css)
	}
	// The page asks for a file its root's cache lacks (refused: the page
	// is reloaded), then at once for /about/, cached under neither root.
	got, err := browser.Eval[string](e.ctx(30*time.Second), e.b, `(async () => {
		const first = await fetch('/video.js').then((r) => 'status ' + r.status, () => 'refused');
		const a = await fetch('/about/').then((r) => r.text(), () => 'refused');
		return first + ' / ' + (a === 'refused' ? a : a.includes('content="2"') ? 'deploy 2' : 'deploy 1');
	})()`)
	t.Logf("the stale page's requests: %q, %v", got, err)
	// Whether or not the page lived to read it, the worker must not have
	// fetched /about/ for it from the nodes under the new root.
	time.Sleep(2 * time.Second)
	st, err := e.b.WorkerStats(e.ctx(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Requests {
		if strings.HasSuffix(r.URL, "/about/") {
			t.Errorf("the worker answered /about/ for a page of the earlier deploy being replaced, from the new root %s: %s (page saw %q)", root, describe(r), got)
		}
	}
	if strings.Contains(got, "deploy 2") {
		t.Errorf("the page of deploy 1 read /about/ of deploy 2")
	}
}

// A navigation the site's _redirects rewrites (a single-page app's deep
// link: /watch/* serves /video.html with 200) is a page of the root the
// rewrite's target was resolved in, as any other: after a deploy, its
// stylesheet comes from that root's cache, not from the new deploy.
func TestRewrittenNavigationKeepsItsRoot(t *testing.T) {
	e := newEnv(t, envConfig{})
	ttl := e.shortTTLGateway(2 * time.Second)
	e.controlled()
	e.cacheAll() // "/" and its files (style.css) under the first root
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/watch/intro"); err != nil {
		t.Fatal(err)
	}
	if doc, css := e.pageDeploy(); doc != "1" || css != "1" {
		t.Fatalf("the rewritten page: document %s, stylesheet %s; want 1 and 1", doc, css)
	}
	root := e.deployEdits(aboutDeploy2)
	time.Sleep(ttl + 500*time.Millisecond) // the sessions reload, to the new root
	// The page asks for its stylesheet again, until the worker's session
	// is surely the new root's.
	for i := range 8 {
		got, err := browser.Eval[string](e.ctx(30*time.Second), e.b,
			`fetch('/style.css').then((r) => r.text(), () => 'refused')`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, `--deploy:"2"`) {
			t.Fatalf("request %d: the page of deploy 1 at /watch/intro got the stylesheet of deploy 2 (root %s)", i, root)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("cache: %s", describe(e.cacheStats()))
}
