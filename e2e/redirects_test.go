package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// With the worker in control, a path the demo site does not have gets
// what its _redirects file and 404.html say, as on a first visit: a 301 to
// the about page, a 200 rewrite of the player's deep links, and the site's
// 404 page with status 404 (never the worker's internal error).
func TestWorkerAppliesRedirects(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	file := func(path string) siteFile {
		for _, f := range e.files {
			if f.Path == path {
				return f
			}
		}
		t.Fatalf("the demo has no %s", path)
		return siteFile{}
	}
	for _, c := range []struct {
		url        string
		status     int
		want       siteFile
		redirected bool
	}{
		{"/watch/intro", http.StatusOK, file("video.html"), false},
		{"/about.html", http.StatusOK, file("about/index.html"), true},
		{"/no/such/page", http.StatusNotFound, file("404.html"), false},
	} {
		res, err := e.b.Fetch(e.ctx(30*time.Second), c.url, &browser.FetchOptions{Cache: "no-store"})
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if res.Status != c.status || res.SHA256 != c.want.SHA256 || res.Redirected != c.redirected {
			t.Errorf("%s: %d, %d bytes, redirected %v; want %d with /%s (%d bytes), redirected %v",
				c.url, res.Status, res.Size, res.Redirected, c.status, c.want.Path, c.want.Size, c.redirected)
		}
		if strings.Contains(res.Headers["content-type"], "text/plain") {
			t.Errorf("%s: an error text, not the site's page", c.url)
		}
	}
}
