package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// siteWithHeaders is a site whose _headers marks /assets/* immutable and
// sets a few headers site-wide.
var siteWithHeaders = map[string][]byte{
	"index.html":         []byte("<h1>home</h1>"),
	"assets/app.123.js":  []byte("console.log(1)"),
	"assets/site.css":    []byte("body{}"),
	"blog/hello.html":    []byte("<h1>hello</h1>"),
	"plain.txt":          []byte("plain"),
	"404.html":           []byte("<h1>no such page</h1>"),
	"assets/legacy.html": []byte("<p>legacy</p>"),
	"_headers": []byte(`# every page
/*
  X-Frame-Options: DENY
  Content-Security-Policy: default-src 'self'
/assets/*
  Cache-Control: public, max-age=31536000, immutable
  Access-Control-Allow-Origin: *
/blog/:page
  ! X-Frame-Options
  Link: </feeds/:page.xml>; rel=alternate
`),
}

// A site's _headers on the gateway's path (first visits): rules apply by
// the requested path to HTML (buffered, and from the HTML cache) and to
// streamed files, to 200, 206 and 304 alike; a page served as a 404
// gets the site's headers but never a rule's Cache-Control; the gateway's
// own headers stay.
func TestSiteHeaders(t *testing.T) {
	nw := startNetwork(t, 2, siteWithHeaders)
	site := nw.SiteURL("demo")
	const immutable = "public, max-age=31536000, immutable"
	for _, c := range []struct {
		name, path, hdr, val string
		status               int
		want                 map[string]string
	}{
		{"html", "", "", "", 200, map[string]string{"X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'self'", "Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff"}},
		{"html from the cache", "", "", "", 200, map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-cache"}},
		{"asset", "assets/app.123.js", "", "", 200, map[string]string{"Cache-Control": immutable, "Access-Control-Allow-Origin": "*", "X-Frame-Options": "DENY"}},
		{"asset range", "assets/app.123.js", "Range", "bytes=0-3", 206, map[string]string{"Cache-Control": immutable, "Content-Range": "bytes 0-3/14"}},
		{"html asset", "assets/legacy.html", "", "", 200, map[string]string{"Cache-Control": immutable}},
		{"placeholder and detach", "blog/hello.html", "", "", 200, map[string]string{"X-Frame-Options": "", "Link": "</feeds/hello.html.xml>; rel=alternate", "Cache-Control": "no-cache"}},
		{"custom 404", "assets/missing.js", "", "", 404, map[string]string{"X-Frame-Options": "DENY", "Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}},
	} {
		var hdr []string
		if c.hdr != "" {
			hdr = []string{c.hdr, c.val}
		}
		resp, _ := nw.get(t, site+c.path, hdr...)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
		}
		for k, v := range c.want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, v)
			}
		}
	}
	// Revalidation keeps them: a 304 carries the same Cache-Control.
	resp, _ := nw.get(t, site+"assets/site.css")
	etag := resp.Header.Get("ETag")
	resp, body := nw.get(t, site+"assets/site.css", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("Cache-Control") != immutable || resp.Header.Get("ETag") != etag {
		t.Fatalf("revalidated asset: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// The worker gets the same rules with its session.
	resp, body = nw.get(t, site+".verity/v1/session")
	var s struct {
		Root    string        `json:"root"`
		Headers headers.Rules `json:"headers"`
	}
	if err := json.Unmarshal(body, &s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("session: %d %v %s", resp.StatusCode, err, body)
	}
	if len(s.Headers) != 3 || s.Headers[1].For != "/assets/*" || s.Headers[1].Pattern != `^/assets/(.*)$` ||
		s.Headers[1].Set[0] != (headers.Header{Name: "Cache-Control", Value: immutable}) || s.Headers[2].Detach[0] != "X-Frame-Options" {
		t.Fatalf("session headers: %+v", s.Headers)
	}
}

// A _headers file naming a header the site may not set is refused: every
// content path and the session answer 500 naming the line; nothing of it
// is applied.
func TestSiteHeadersRefused(t *testing.T) {
	for _, name := range []string{"Set-Cookie", "Content-Length", "Transfer-Encoding", "Content-Range", "Service-Worker-Allowed", "X-Verity-Root"} {
		t.Run(name, func(t *testing.T) {
			nw := startNetwork(t, 1, map[string][]byte{
				"index.html": []byte("hi"),
				"_headers":   []byte("/*\n  X-Frame-Options: DENY\n  " + name + ": 1\n"),
			})
			for _, p := range []string{"", "index.html", ".verity/v1/session"} {
				resp, body := nw.get(t, nw.SiteURL("demo")+p)
				if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "line 3") || !strings.Contains(string(body), name) || resp.Header.Get("X-Frame-Options") != "" {
					t.Errorf("/%s: %d %q %v", p, resp.StatusCode, body, resp.Header)
				}
			}
		})
	}
}

// Caching defaults without _headers: every file revalidates by its ETag
// (the file's CID) with Cache-Control: no-cache, and If-None-Match with
// that ETag (strong, weak or in a list) is a 304 without a body, for
// HTML (buffered or from the cache) and for streamed files.
func TestRevalidateByETag(t *testing.T) {
	nw := startNetwork(t, 1, map[string][]byte{
		"index.html":     []byte("<h1>home</h1>"),
		"assets/app.js":  []byte("console.log(1)"),
		"big/video.mp4":  make([]byte, 600<<10), // several blocks
		"other/page.htm": []byte("<p>x</p>"),
	})
	site := nw.SiteURL("demo")
	for _, p := range []string{"", "", "assets/app.js", "big/video.mp4", "other/page.htm"} {
		resp, body := nw.get(t, site+p)
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(etag, `"b`) || len(body) == 0 {
			t.Fatalf("/%s: %d %v", p, resp.StatusCode, resp.Header)
		}
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, body := nw.do(t, method, site+p, nil, "If-None-Match", inm)
				if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") != "no-cache" {
					t.Errorf("%s /%s If-None-Match %s: %d %q %v", method, p, inm, resp.StatusCode, body, resp.Header)
				}
			}
		}
		if resp, _ := nw.get(t, site+p, "If-None-Match", `"bafkreiother"`); resp.StatusCode != 200 {
			t.Errorf("/%s with another ETag: %d", p, resp.StatusCode)
		}
	}
}

// The session carries "headers": [] for a root without _headers; when no
// node can serve the file, the session goes without the field (the
// worker then applies none) rather than failing, charges no node, and
// does not ask again for a while.
func TestSessionHeadersAbsentOrUnreachable(t *testing.T) {
	nw := startNetwork(t, 1, map[string][]byte{"index.html": []byte("hi")})
	_, body := nw.get(t, nw.SiteURL("demo")+".verity/v1/session")
	if !strings.Contains(string(body), `"headers":[]`) || !strings.Contains(string(body), `"redirects":[]`) {
		t.Fatalf("session without _headers and _redirects: %s", body)
	}

	cc := testCoordinator()
	cc.URLProver = acceptURLs{}
	tg := startCoordGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Bus: openBus(t, "gw")}, cc)
	joinNode(t, tg, 1, sitetest.RecordAt(t, 1, "127.0.0.1")) // its record's URLs answer nothing
	waitFor(t, "a node in the session", func() bool { return len(tg.session(t, "demo").Nodes) == 1 })
	for range 2 {
		resp, body := tg.get(t, tg.SiteURL("demo")+".verity/v1/session")
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"headers"`) || strings.Contains(string(body), `"redirects"`) {
			t.Fatalf("session with unreachable nodes: %d %s", resp.StatusCode, body)
		}
	}
	if n := tg.counter(t, "verity_gateway_node_failures_total"); n != 0 {
		t.Fatalf("%v node failures charged by sessions", n)
	}
}
