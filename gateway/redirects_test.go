package gateway

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/redirects"
)

// A site's _redirects rules and 404.html on the gateway's path (first
// visits): rules apply only to paths the site does not have, the first
// match wins, redirects keep the query, a 200 rewrite serves its target
// verified at the requested URL, 404/410 serve their page with that
// status, and a path no rule matches gets 404.html with 404.
func TestRedirectsAndCustom404(t *testing.T) {
	files := map[string][]byte{
		"index.html":     []byte("<h1>home</h1>"),
		"new.html":       []byte("<h1>new</h1>"),
		"posts/a.html":   []byte("<h1>post a</h1>"),
		"app/index.html": []byte("<h1>the app</h1>"),
		"gone.html":      []byte("<h1>gone</h1>"),
		"404.html":       []byte("<h1>no such page</h1>"),
		"_redirects": []byte(`# moved pages
/old /new.html 301
/new.html /index.html 302
/blog/:slug /posts/:slug.html 302
/app/* /app/index.html 200
/gone/* /gone.html 410
/go/* /:splat 302
`),
	}
	nw := startNetwork(t, 2, files)
	site := nw.SiteURL("demo")
	for _, c := range []struct {
		path, hdr string
		status    int
		body, loc string
	}{
		{"old", "", 301, "", "/new.html"},
		{"new.html", "", 200, "<h1>new</h1>", ""}, // exists: no rule applies
		{"blog/a?ref=x", "", 302, "", "/posts/a.html?ref=x"},
		{"app/some/deep/route", "", 200, "<h1>the app</h1>", ""},
		{"app/some/deep/route", "bytes=0-3", 206, "<h1>", ""}, // a rewrite is the file itself
		{"gone/anything", "", 410, "<h1>gone</h1>", ""},
		{"gone/anything", "bytes=0-3", 410, "<h1>gone</h1>", ""},
		{"nope", "", 404, "<h1>no such page</h1>", ""},
		{"nope/", "", 404, "<h1>no such page</h1>", ""},
		{"go/elsewhere", "", 302, "", "/elsewhere"},
	} {
		var hdr []string
		if c.hdr != "" {
			hdr = []string{"Range", c.hdr}
		}
		resp, body := nw.get(t, site+c.path, hdr...)
		if resp.StatusCode != c.status || (c.body != "" && string(body) != c.body) || resp.Header.Get("Location") != c.loc {
			t.Errorf("%s (%s): %d %q Location %q, want %d %q %q", c.path, c.hdr, resp.StatusCode, body, resp.Header.Get("Location"), c.status, c.body, c.loc)
		}
	}
	// The worker gets the same rules with its session, to apply them itself.
	resp, body := nw.get(t, site+".verity/v1/session")
	var s struct {
		Redirects redirects.Rules `json:"redirects"`
	}
	if err := json.Unmarshal(body, &s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %v %s", resp.StatusCode, err, body)
	}
	want, _ := redirects.Parse(files["_redirects"])
	if !reflect.DeepEqual(s.Redirects, want) {
		t.Fatalf("session redirects %+v, want %+v", s.Redirects, want)
	}
}

// Without _redirects or 404.html a missing path is a plain 404; a
// _redirects file that does not parse is a 500 naming the line.
func TestRedirectsAbsentOrInvalid(t *testing.T) {
	plain := startNetwork(t, 1, map[string][]byte{"index.html": []byte("hi")})
	if resp, body := plain.get(t, plain.SiteURL("demo")+"nope"); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not found") {
		t.Fatalf("no rules: %d %q", resp.StatusCode, body)
	}
	bad := startNetwork(t, 1, map[string][]byte{"index.html": []byte("hi"), "_redirects": []byte("/ok /index.html\n/bad\n")})
	resp, body := bad.get(t, bad.SiteURL("demo")+"nope")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "line 2") {
		t.Fatalf("bad rules: %d %q", resp.StatusCode, body)
	}
	if resp, body := bad.get(t, bad.SiteURL("demo")+".verity/v1/session"); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "line 2") {
		t.Fatalf("session with bad rules: %d %q", resp.StatusCode, body)
	}
	if resp, _ := bad.get(t, bad.SiteURL("demo")+"index.html"); resp.StatusCode != http.StatusOK {
		t.Fatalf("an existing file behind bad rules: %d", resp.StatusCode)
	}
}
