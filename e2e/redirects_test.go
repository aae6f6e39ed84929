package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// With the worker in control, a path the demo site does not have gets
// what its _redirects file and 404.html say, as on a first visit: a 301 to
// the about page, a 200 rewrite of the player's deep links, and the site's
// 404 page with status 404 (never the worker's internal error). The worker
// applies the rules itself: the rewrite and the 404 page are files it
// fetched from the nodes and verified, not the gateway's answers; with the
// worker bypassed the gateway answers each path the same way.
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
	cases := []struct {
		url        string
		status     int
		want       siteFile
		redirected bool
	}{
		{"/watch/intro", http.StatusOK, file("video.html"), false},
		{"/about.html", http.StatusOK, file("about/index.html"), true},
		{"/no/such/page", http.StatusNotFound, file("404.html"), false},
	}
	// The gateway first (the worker bypassed, as on a first visit), then
	// the worker: the same site answers the same way on both paths.
	for _, viaWorker := range []bool{false, true} {
		if err := e.b.BypassServiceWorker(e.ctx(10*time.Second), !viaWorker); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			res, err := e.b.Fetch(e.ctx(30*time.Second), c.url, &browser.FetchOptions{Cache: "no-store"})
			if err != nil {
				t.Fatalf("%s: %v", c.url, err)
			}
			if res.Status != c.status || res.SHA256 != c.want.SHA256 || res.Redirected != c.redirected {
				t.Errorf("%s (worker %v): %d, %d bytes, redirected %v; want %d with /%s (%d bytes), redirected %v",
					c.url, viaWorker, res.Status, res.Size, res.Redirected, c.status, c.want.Path, c.want.Size, c.redirected)
			}
			if strings.Contains(res.Headers["content-type"], "text/plain") {
				t.Errorf("%s (worker %v): an error text, not the site's page", c.url, viaWorker)
			}
			via, _ := res.Timing("verity")
			switch {
			case viaWorker && via != "webtransport" && via != "cache":
				t.Errorf("%s: served by %q (Server-Timing %q), want the worker from the nodes", c.url, via, res.Headers["server-timing"])
			case !viaWorker && via != "first-visit":
				t.Errorf("%s with the worker bypassed: served by %q (Server-Timing %q), want the gateway", c.url, via, res.Headers["server-timing"])
			}
		}
	}
}

// When neither the nodes nor the gateway can deliver a file (its block is
// corrupt on every node), the worker answers with its own small page that
// names the site and the status, never its internal error text.
func TestWorkerErrorPageNamesSite(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	css := fileOf(t, e.files, "style.css")
	for _, n := range e.net.Nodes() {
		corruptLeaf(t, e, n, css.Path)
	}
	res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+css.Path, &browser.FetchOptions{Cache: "no-store", Body: true})
	if err != nil {
		t.Fatal(err)
	}
	body, err := base64.StdEncoding.DecodeString(res.BodyB64)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(e.site, "http://")
	if res.Status != http.StatusBadGateway || !strings.HasPrefix(res.Headers["content-type"], "text/html") {
		t.Fatalf("/%s: %d %q, want 502 text/html: %s", css.Path, res.Status, res.Headers["content-type"], body)
	}
	if !strings.Contains(string(body), host) || strings.Contains(string(body), "wasmclient") || strings.Contains(string(body), "verify") {
		t.Errorf("/%s: the page should name %s and nothing of the worker's internals: %s", css.Path, host, body)
	}
	if via, _ := res.Timing("verity"); via != "error" {
		t.Errorf("/%s: Server-Timing %q, want the worker's error", css.Path, res.Headers["server-timing"])
	}
}
