package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/noderecord"
)

func testCID(t *testing.T, data string) string {
	t.Helper()
	c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestScripts(t *testing.T) {
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "root")}), Nodes: StaticNodes{}})
	site := tg.SiteURL("demo")

	resp, body := tg.get(t, site+"verity.js")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		resp.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(string(body), "register") {
		t.Fatalf("verity.js: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	resp, body = tg.get(t, site+"verity-sw.js")
	if resp.StatusCode != 200 || resp.Header.Get("Service-Worker-Allowed") != "/" ||
		resp.Header.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("verity-sw.js: %d %v", resp.StatusCode, resp.Header)
	}
	if strings.Contains(string(body), "__VERITY_") {
		t.Fatalf("placeholders left in worker: %q", body)
	}
	wasmURL := regexp.MustCompile(`/\.verity/wasm/[0-9a-f]{16}\.wasm`).FindString(string(body))
	execURL := regexp.MustCompile(`/\.verity/wasm_exec\.[0-9a-f]{16}\.js`).FindString(string(body))
	if wasmURL == "" || execURL == "" {
		t.Fatalf("worker lacks hashed URLs: %q", body)
	}
	// The BLAKE3 SIMD module is inlined, in base64.
	if simd := base64.StdEncoding.EncodeToString(testAssets()["dist/blake3.wasm"].Data); !strings.Contains(string(body), "const BLAKE3_SIMD = '"+simd+"';") {
		t.Fatalf("worker lacks the BLAKE3 SIMD module %q: %q", simd, body)
	}

	raw := testAssets()["dist/verity.wasm"].Data
	resp, body = tg.get(t, site+strings.TrimPrefix(wasmURL, "/"), "Accept-Encoding", "gzip, deflate, br")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" ||
		resp.Header.Get("Content-Type") != "application/wasm" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("wasm gzip: %d %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, raw) {
		t.Fatal("gunzipped wasm differs")
	}
	gzETag := resp.Header.Get("ETag")
	resp, body = tg.get(t, site+strings.TrimPrefix(wasmURL, "/"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, raw) {
		t.Fatalf("wasm identity: %d %v", resp.StatusCode, resp.Header)
	}
	// Two representations, two strong validators; each revalidates itself.
	if idETag := resp.Header.Get("ETag"); idETag == gzETag || idETag == "" || gzETag == "" {
		t.Fatalf("ETags: identity %q, gzip %q", idETag, gzETag)
	}
	if resp, _ = tg.get(t, site+strings.TrimPrefix(wasmURL, "/"), "Accept-Encoding", "gzip", "If-None-Match", gzETag); resp.StatusCode != 304 {
		t.Fatalf("gzip revalidation: %d", resp.StatusCode)
	}
	resp, _ = tg.get(t, site+strings.TrimPrefix(wasmURL, "/"), "Accept-Encoding", "gzip;q=0")
	if resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 still got gzip")
	}

	resp, body = tg.get(t, site+strings.TrimPrefix(execURL, "/"))
	if resp.StatusCode != 200 || string(body) != "// wasm_exec\n" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("wasm_exec: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if resp, _ = tg.get(t, site+strings.TrimPrefix(execURL, "/"), "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("wasm_exec not compressed: %v", resp.Header)
	}
	resp, _ = tg.get(t, site+".verity/wasm/0000000000000000.wasm")
	if resp.StatusCode != 404 {
		t.Fatalf("unknown wasm hash: %d", resp.StatusCode)
	}
	resp, _ = tg.get(t, site+"verity.js", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != 200 {
		t.Fatalf("empty If-None-Match: %d", resp.StatusCode)
	}
	resp2, _ := tg.get(t, site+"verity.js")
	resp, _ = tg.get(t, site+"verity.js", "If-None-Match", resp2.Header.Get("ETag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = tg.do(t, http.MethodPost, site+"verity.js", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("POST verity.js: %d", resp.StatusCode)
	}
	if n := tg.counter(t, "verity_gateway_bytes_served_total", "kind", "wasm"); n <= 0 {
		t.Fatalf("wasm bytes counter = %v", n)
	}
}

func TestMissingWasm(t *testing.T) {
	assets := testAssets()
	delete(assets, "dist/verity.wasm")
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Nodes: StaticNodes{}, Assets: assets})
	resp, _ := tg.get(t, tg.SiteURL("demo")+"verity-sw.js")
	if resp.StatusCode != 200 {
		t.Fatalf("worker without wasm: %d", resp.StatusCode)
	}
	resp, _ = tg.get(t, tg.SiteURL("demo")+".verity/wasm/0123456789abcdef.wasm")
	if resp.StatusCode != 404 {
		t.Fatalf("missing wasm: %d", resp.StatusCode)
	}
}

func TestSession(t *testing.T) {
	now := time.Now()
	good1 := signedRecord(t, 1, "http://127.0.0.1:4001", now)
	good2 := signedRecord(t, 2, "http://127.0.0.1:4002", now)
	bad := signedRecord(t, 3, "http://127.0.0.1:4003", now)
	bad.Record.HTTP = "http://evil.example" // signature no longer matches
	expired := signedRecord(t, 4, "http://127.0.0.1:4004", now.Add(-2*time.Hour))
	root := testCID(t, "site")
	tg := startGateway(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": root}),
		Nodes: StaticRecords(good1, bad, expired, good2),
	})
	resp, body := tg.get(t, tg.SiteURL("demo")+".verity/v1/session")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("session: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var s struct {
		Version  int    `json:"version"`
		Site     string `json:"site"`
		Root     string `json:"root"`
		TTL      int    `json:"ttl"`
		Fallback string `json:"fallback"`
		Nodes    []struct {
			ID           string            `json:"id"`
			WebTransport string            `json:"webtransport"`
			CertHashes   []string          `json:"certHashes"`
			HTTP         string            `json:"http"`
			Record       noderecord.Signed `json:"record"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Version != 1 || s.Site != "demo" || s.Root != root || s.TTL != 30 || s.Fallback != "/.verity/v1/ipfs" {
		t.Fatalf("session fields: %+v", s)
	}
	if len(s.Nodes) != 2 || s.Nodes[0].ID != good1.Record.NodeID || s.Nodes[1].ID != good2.Record.NodeID {
		t.Fatalf("nodes: %+v", s.Nodes)
	}
	n := s.Nodes[0]
	if n.HTTP != "http://127.0.0.1:4001" || n.WebTransport != good1.Record.WebTransport ||
		len(n.CertHashes) != 1 || n.CertHashes[0] != base64.StdEncoding.EncodeToString(good1.Record.CertHashes[0].SHA256) {
		t.Fatalf("node: %+v", n)
	}
	if err := n.Record.Verify(time.Now()); err != nil {
		t.Fatalf("record in session does not verify: %v", err)
	}

	resp, body = tg.get(t, "http://nosuch.localhost/.verity/v1/session")
	if resp.StatusCode != 404 || strings.TrimSpace(string(body)) != `{"error":"unknown site"}` {
		t.Fatalf("unknown site: %d %s", resp.StatusCode, body)
	}
}

func TestReport(t *testing.T) {
	now := time.Now()
	rec := signedRecord(t, 1, "http://127.0.0.1:4001", now)
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Nodes: StaticRecords(rec)})
	url := tg.SiteURL("demo") + ".verity/v1/report"
	post := func(body string) int {
		resp, _ := tg.do(t, http.MethodPost, url, strings.NewReader(body), "Content-Type", "application/json")
		return resp.StatusCode
	}
	if c := post(`{"node":"` + rec.Record.NodeID + `","cid":"bafy","reason":"bad-block","detail":"hash mismatch"}`); c != 204 {
		t.Fatalf("report: %d", c)
	}
	if c := post(`{"node":"nUNKNOWN","reason":"timeout"}`); c != 204 {
		t.Fatalf("report unknown node: %d", c)
	}
	if n := tg.counter(t, "verity_gateway_node_reports_total", "node", rec.Record.NodeID, "reason", "bad-block"); n != 1 {
		t.Fatalf("reports{known} = %v", n)
	}
	if n := tg.counter(t, "verity_gateway_node_reports_total", "node", "unknown", "reason", "timeout"); n != 1 {
		t.Fatalf("reports{unknown} = %v", n)
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"node":"n1","reason":"bored"}`, 400},
		{`{"reason":"timeout"}`, 400},
		{`not json`, 400},
		{`{"node":"n1","reason":"timeout","detail":"` + strings.Repeat("x", 5000) + `"}`, 413},
	} {
		if c := post(tc.body); c != tc.want {
			t.Errorf("report %.40q: %d, want %d", tc.body, c, tc.want)
		}
	}
	resp, _ := tg.get(t, url)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET report: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestRouting(t *testing.T) {
	root := testCID(t, "r")
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": root}), Nodes: StaticNodes{}})
	if got := tg.SiteURL("demo"); !regexp.MustCompile(`^http://demo\.localhost:\d+/$`).MatchString(got) {
		t.Fatalf("SiteURL = %q", got)
	}
	resp, body := tg.get(t, tg.URL()+"/healthz")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	tg.get(t, tg.SiteURL("demo")+"verity.js")
	resp, body = tg.get(t, tg.URL()+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "verity_gateway_requests_total") {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	resp, _ = tg.get(t, "http://localhost/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics on localhost: %d", resp.StatusCode)
	}
	resp, _ = tg.get(t, tg.SiteURL("demo")+"metrics")
	if resp.StatusCode == 200 {
		t.Fatal("metrics must not be served on a site origin")
	}
	for _, tc := range []struct{ url, want string }{
		{"http://nosuch.localhost/", "404"},
		{"http://bad_name.localhost/", "404"},
		{"http://demo.localhost/.verity/nothing", "404"},
		{"http://demo.localhost/a/../b", "400"},
		{"http://demo.localhost/a//b", "400"},
		{"http://demo.localhost/a%2Fb", "400"},
		{"http://demo.localhost/.verity/v1/ipfs/notacid/x?format=car&dag-scope=entity", "400"},
		{"http://demo.localhost/.verity/v1/ipfs/" + root + "?format=raw&dag-scope=entity", "400"},
		{"http://demo.localhost/.verity/v1/ipfs/" + root + "?format=car&dag-scope=all", "400"},
		{"http://demo.localhost/.verity/v1/ipfs/" + root + "?format=car&dag-scope=entity&entity-bytes=5:1", "400"},
		{"http://demo.localhost/.verity/v1/ipfs/" + testCID(t, "other") + "?format=car&dag-scope=entity", "403"},
		{"http://demo.localhost/.verity/v1/ipfs/" + root + "/index.html?format=car&dag-scope=entity", "502"},
		{"http://demo.localhost/index.html", "502"},
	} {
		resp, body := tg.get(t, tc.url)
		if got := resp.Status[:3]; got != tc.want {
			t.Errorf("GET %s: %s (%s), want %s", tc.url, resp.Status, bytes.TrimSpace(body), tc.want)
		}
	}
	resp, _ = tg.do(t, http.MethodDelete, "http://demo.localhost/index.html", nil)
	if resp.StatusCode != 405 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
}

func TestRootGrace(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	r1, r2, r3 := testCID(t, "v1"), testCID(t, "v2"), testCID(t, "v3")
	sites := NewStaticSites(map[string]string{"demo": r1})
	tg := startGateway(t, Config{Sites: sites, Nodes: StaticNodes{}, Now: clock, RootGrace: time.Minute})
	allowed := func(root string) bool {
		site, _ := sites.Site(t.Context(), "demo")
		return tg.rootAllowed(site, root)
	}
	sites.Set("demo", r2)
	if !allowed(r1) || !allowed(r2) || allowed(r3) {
		t.Fatal("after one change: want r1 (grace) and r2 allowed, r3 refused")
	}
	now = now.Add(2 * time.Minute)
	if allowed(r1) || !allowed(r2) {
		t.Fatal("after the grace period r1 must be refused")
	}
}

func TestHTTPNodes(t *testing.T) {
	now := time.Now()
	var rec noderecord.Signed
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != RecordPath {
			http.NotFound(w, r)
			return
		}
		hits++
		b, _ := rec.Marshal()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	rec = signedRecord(t, 7, srv.URL, now)
	clock := now
	hn := NewHTTPNodes(HTTPNodesConfig{URLs: []string{srv.URL + "/", "http://127.0.0.1:1"}, Refresh: time.Minute, Now: func() time.Time { return clock }})
	got, err := hn.Nodes(t.Context())
	if err != nil || len(got) != 1 || got[0].Record.NodeID != rec.Record.NodeID {
		t.Fatalf("Nodes = %v, %v", got, err)
	}
	hn.Nodes(t.Context())
	if hits != 1 {
		t.Fatalf("fetched %d times within Refresh", hits)
	}
	clock = clock.Add(2 * time.Minute)
	hn.Nodes(t.Context())
	if hits != 2 {
		t.Fatalf("fetched %d times after Refresh", hits)
	}
}
