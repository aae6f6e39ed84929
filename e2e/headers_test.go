package e2e

import (
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
)

// With the worker in control, the demo's _headers rules are on the
// worker's own answers (from storage nodes, then from its cache), as the
// gateway puts them on first visits: the site-wide headers on every
// file, the /about/* Cache-Control on the about page only.
func TestWorkerAppliesSiteHeaders(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	check := func(url, cacheControl string, res browser.FetchResult) {
		t.Helper()
		tr, _ := res.Timing("verity")
		if res.Status != 200 || tr == "first-visit" || tr == "" {
			t.Fatalf("%s: %d served by %q %v; want 200 from the worker", url, res.Status, tr, res.Headers)
		}
		if res.Headers["x-frame-options"] != "SAMEORIGIN" || res.Headers["referrer-policy"] != "strict-origin-when-cross-origin" {
			t.Errorf("%s (%s): site-wide headers missing: %v", url, tr, res.Headers)
		}
		if res.Headers["cache-control"] != cacheControl {
			t.Errorf("%s (%s): Cache-Control %q, want %q", url, tr, res.Headers["cache-control"], cacheControl)
		}
	}
	fetch := func(url string) browser.FetchResult {
		t.Helper()
		res, err := e.b.Fetch(e.ctx(30*time.Second), url, nil)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return res
	}
	check("/style.css", "", fetch("/style.css"))
	check("/about/index.html", "public, max-age=600", fetch("/about/index.html"))
	// Stored by the worker once verified: then answered from its cache.
	var res browser.FetchResult
	testutil.Eventually(t, 30*time.Second, "the about page from the worker's cache", func() bool {
		res = fetch("/about/index.html")
		tr, _ := res.Timing("verity")
		return tr == "cache"
	})
	check("/about/index.html", "public, max-age=600", res)
}
