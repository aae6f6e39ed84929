package gateway

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
)

// The console is served at /console/ on the gateway's own host only,
// with a policy that runs no inline or foreign script and forbids
// framing; a site's origin has no console, and neither has a gateway
// without Config.Console.
func TestConsoleServedOnOwnHost(t *testing.T) {
	root := testCID(t, "r")
	files := fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html><title>Verity console</title>")},
		"console.js": {Data: []byte("'use strict';")},
	}
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": root}), Nodes: StaticNodes{}, Console: files})
	resp, body := tg.get(t, tg.URL()+ConsolePath+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Verity console") {
		t.Fatalf("console: %d %q", resp.StatusCode, body)
	}
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	resp, _ = tg.get(t, tg.URL()+ConsolePath+"/console.js")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("console.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, _ = tg.get(t, tg.URL()+ConsolePath)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != ConsolePath+"/" {
		t.Fatalf("%s: %d %v", ConsolePath, resp.StatusCode, resp.Header)
	}
	resp, _ = tg.do(t, http.MethodPost, tg.URL()+ConsolePath+"/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST console: %d", resp.StatusCode)
	}
	resp, body = tg.get(t, tg.SiteURL("demo")+"console/")
	if strings.Contains(string(body), "Verity console") {
		t.Fatalf("a site's origin serves the console: %d", resp.StatusCode)
	}
	bare := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": root}), Nodes: StaticNodes{}})
	if resp, _ := bare.get(t, bare.URL()+ConsolePath+"/"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("console without Config.Console: %d", resp.StatusCode)
	}
}
