package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/node"
)

// network is a gateway in front of real nodes on loopback.
type network struct {
	*testGateway
	nodes []*node.Node
	sites *StaticSites
	root  string
}

func startNetwork(t *testing.T, nNodes int, files map[string][]byte) *network {
	t.Helper()
	return startNetworkWith(t, nNodes, files, nil)
}

// startNetworkWith is startNetwork with a hook to adjust the gateway's Config.
func startNetworkWith(t *testing.T, nNodes int, files map[string][]byte, mod func(*Config)) *network {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*node.Node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, nNodes)
	for i := range nNodes {
		n, err := node.New(node.Config{DataDir: filepath.Join(t.TempDir(), "node-"+strconv.Itoa(i+1)), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		go func() { done <- n.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range nodes {
			<-done
		}
		for _, n := range nodes {
			n.Close()
		}
	})
	root := sitetest.Import(t, nodes, files)
	sites := NewStaticSites(map[string]string{"demo": root})
	recs := make(StaticNodes, len(nodes))
	for i, n := range nodes {
		recs[i] = func() noderecord.Signed { return n.Record() }
	}
	cfg := Config{Sites: sites, Nodes: recs}
	if mod != nil {
		mod(&cfg)
	}
	tg := startGateway(t, cfg)
	return &network{testGateway: tg, nodes: nodes, sites: sites, root: root}
}

func (nw *network) nodeID(i int) string { return nw.nodes[i].Record().Record.NodeID }

func TestFirstVisit(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 2, files)
	site := nw.SiteURL("demo")

	for _, tc := range []struct {
		path, file, ctype string
	}{
		{"", "index.html", "text/html; charset=utf-8"},
		{"index.html", "index.html", "text/html; charset=utf-8"},
		{"style.css", "style.css", "text/css; charset=utf-8"},
		{"about/", "about/index.html", "text/html; charset=utf-8"},
		{"media/big.bin", "media/big.bin", "application/octet-stream"},
		{"docs/a%20b.txt", "docs/a b.txt", "text/plain; charset=utf-8"},
	} {
		resp, body := nw.get(t, site+tc.path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /%s: %s %s", tc.path, resp.Status, body)
		}
		if !bytes.Equal(body, files[tc.file]) {
			t.Fatalf("GET /%s: body differs (%d bytes, want %d)", tc.path, len(body), len(files[tc.file]))
		}
		h := resp.Header
		if h.Get("Content-Type") != tc.ctype || h.Get("Content-Length") != strconv.Itoa(len(files[tc.file])) ||
			h.Get("Accept-Ranges") != "bytes" || !strings.HasPrefix(h.Get("ETag"), `"bafk`) && !strings.HasPrefix(h.Get("ETag"), `"bafy`) ||
			!strings.Contains(h.Get("Server-Timing"), `verity;desc=`) {
			t.Fatalf("GET /%s: headers %v", tc.path, h)
		}
	}

	resp, _ := nw.get(t, site+"about")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/about/" {
		t.Fatalf("GET /about: %s %v", resp.Status, resp.Header)
	}
	resp, _ = nw.get(t, site+"missing.txt")
	if resp.StatusCode != 404 {
		t.Fatalf("GET /missing.txt: %s", resp.Status)
	}
	resp, _ = nw.get(t, site+"about/missing/deeper.css")
	if resp.StatusCode != 404 {
		t.Fatalf("GET /about/missing/deeper.css: %s", resp.Status)
	}

	resp, body := nw.do(t, http.MethodHead, site+"media/big.bin", nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(files["media/big.bin"])) {
		t.Fatalf("HEAD big.bin: %s %v", resp.Status, resp.Header)
	}
	big := files["media/big.bin"]
	resp, body = nw.get(t, site+"media/big.bin", "Range", "bytes=300000-600000")
	if resp.StatusCode != 206 || !bytes.Equal(body, big[300000:600001]) ||
		resp.Header.Get("Content-Range") != "bytes 300000-600000/"+strconv.Itoa(len(big)) {
		t.Fatalf("range: %s %v (%d bytes)", resp.Status, resp.Header, len(body))
	}
	etag := resp.Header.Get("ETag")
	resp, _ = nw.get(t, site+"media/big.bin", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %s", resp.Status)
	}

	// HTML is cached after the first visit.
	hits := nw.counter(t, "verity_gateway_html_cache_hits_total")
	resp, body = nw.get(t, site)
	if resp.StatusCode != 200 || !bytes.Equal(body, files["index.html"]) {
		t.Fatalf("cached GET /: %s", resp.Status)
	}
	if got := nw.counter(t, "verity_gateway_html_cache_hits_total"); got != hits+1 {
		t.Fatalf("cache hits %v, want %v", got, hits+1)
	}
	if got := nw.counter(t, "verity_gateway_bytes_served_total", "kind", "asset"); got < float64(len(big)) {
		t.Fatalf("asset bytes served %v", got)
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total"); got != 0 {
		t.Fatalf("node failures %v on a healthy network", got)
	}
}

// A file whose chunks repeat has repeated blocks: nodes must send each
// as often as the traversal needs it, on the first visit and the fallback.
func TestRepeatedBlocks(t *testing.T) {
	files := sitetest.Files()
	zeros := make([]byte, 3*sitetest.ChunkSize+100)
	files["zeros.bin"] = zeros
	nw := startNetwork(t, 1, files)
	site := nw.SiteURL("demo")
	resp, body := nw.get(t, site+"zeros.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, zeros) {
		t.Fatalf("GET /zeros.bin: %s, %d bytes", resp.Status, len(body))
	}
	root, err := cid.Parse(nw.root)
	if err != nil {
		t.Fatal(err)
	}
	req := verify.Request{Root: root, Path: []string{"zeros.bin"}}
	resp, body = nw.get(t, site+strings.TrimPrefix(FallbackPrefix, "/")+strings.TrimPrefix(req.Target(), "/ipfs"))
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "dups=y") {
		t.Fatalf("fallback: %s %v", resp.Status, resp.Header)
	}
	got, err := io.ReadAll(verify.NewReader(bytes.NewReader(body), req, verify.Options{}))
	if err != nil || !bytes.Equal(got, zeros) {
		t.Fatalf("fallback: verified %d bytes (err %v), want %d", len(got), err, len(zeros))
	}
}

// leafCID is the CID of the i-th 256 KiB leaf of data (raw leaves, BLAKE3).
func leafCID(t *testing.T, data []byte, i int) gocid.Cid {
	t.Helper()
	end := min((i+1)*sitetest.ChunkSize, len(data))
	c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, data[i*sitetest.ChunkSize:end])
	if err != nil {
		t.Fatal(err)
	}
	gc, err := gocid.Decode(c.String())
	if err != nil {
		t.Fatal(err)
	}
	return gc
}

// corrupt overwrites block c on n with garbage of the same length.
func corrupt(t *testing.T, n *node.Node, c gocid.Cid) {
	t.Helper()
	p, err := n.BlockPath(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("block %s not stored at %s: %v", c, p, err)
	}
	for i := range b {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlockFailover(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 2, files)
	site := nw.SiteURL("demo")
	big := files["media/big.bin"]

	// A leaf in the middle of big.bin: node 1 fails after headers are sent.
	corrupt(t, nw.nodes[0], leafCID(t, big, 3))
	resp, body := nw.get(t, site+"media/big.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, big) {
		t.Fatalf("big.bin with a bad block on node 1: %s, %d bytes (want %d)", resp.Status, len(body), len(big))
	}
	if st := resp.Header.Get("Server-Timing"); !strings.Contains(st, nw.nodeID(0)) {
		t.Fatalf("big.bin did not start on node 1: Server-Timing %q", st)
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total", "node", nw.nodeID(0), "reason", "verify"); got < 1 {
		t.Fatalf("node 1 verify failures = %v, want ≥ 1", got)
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total", "node", nw.nodeID(1)); got != 0 {
		t.Fatalf("node 2 failures = %v", got)
	}

	// The CSS file is one raw block: node 1 fails before any byte is sent.
	cssCID := leafCID(t, files["style.css"], 0)
	corrupt(t, nw.nodes[0], cssCID)
	corrupt(t, nw.nodes[0], leafCID(t, files["index.html"], 0))
	nw.health.failed = map[string]time.Time{} // try node 1 first again
	for _, p := range []string{"style.css", "index.html"} {
		resp, body = nw.get(t, site+p)
		if resp.StatusCode != 200 || !bytes.Equal(body, files[p]) {
			t.Fatalf("%s with a bad block on node 1: %s %q", p, resp.Status, body)
		}
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total", "node", nw.nodeID(0)); got < 2 {
		t.Fatalf("node 1 failures = %v, want ≥ 2", got)
	}

	// When every node has the bad block, the response is aborted, not cut short.
	corrupt(t, nw.nodes[1], leafCID(t, big, 3))
	req, _ := http.NewRequest(http.MethodGet, site+"media/big.bin", nil)
	r, err := nw.client.Do(req)
	if err == nil {
		_, err = io.ReadAll(r.Body)
		r.Body.Close()
		if err == nil {
			t.Fatal("a body no node could verify was served complete")
		}
	}
}

func TestCachePurgeOnRootChange(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 1, files)
	site := nw.SiteURL("demo")
	nw.get(t, site)
	if resp, body := nw.get(t, site); resp.StatusCode != 200 || !bytes.Equal(body, files["index.html"]) {
		t.Fatalf("v1: %s", resp.Status)
	}
	v2 := sitetest.Files()
	v2["index.html"] = []byte("<!doctype html><h1>version two</h1>\n")
	root2 := sitetest.Import(t, nw.nodes, v2)
	if root2 == nw.root {
		t.Fatal("v2 has the same root")
	}
	nw.sites.Set("demo", root2)
	if n := nw.cache.bytes(); n != 0 {
		t.Fatalf("cache holds %d bytes after the root changed", n)
	}
	hits := nw.counter(t, "verity_gateway_html_cache_hits_total")
	resp, body := nw.get(t, site)
	if resp.StatusCode != 200 || !bytes.Equal(body, v2["index.html"]) {
		t.Fatalf("v2: %s %q", resp.Status, body)
	}
	if got := nw.counter(t, "verity_gateway_html_cache_hits_total"); got != hits {
		t.Fatal("v2 was served from the cache")
	}
	// The previous root stays servable by the fallback for a while.
	old := site + ".verity/v1/ipfs/" + nw.root + "/style.css?format=car&dag-scope=entity"
	if resp, _ := nw.get(t, old); resp.StatusCode != 200 {
		t.Fatalf("fallback for the previous root: %s", resp.Status)
	}
}

func TestFallbackCAR(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 2, files)
	site := nw.SiteURL("demo")
	root, err := cid.Parse(nw.root)
	if err != nil {
		t.Fatal(err)
	}
	big := files["media/big.bin"]
	for _, tc := range []struct {
		path []string
		rng  *verify.ByteRange
		want []byte
	}{
		{[]string{"style.css"}, nil, files["style.css"]},
		{[]string{"media", "big.bin"}, nil, big},
		{[]string{"media", "big.bin"}, &verify.ByteRange{From: 500000, To: -1}, big[500000:]},
		// A worker's suffix range ("Range: bytes=-1000") falls back as this.
		{[]string{"media", "big.bin"}, &verify.ByteRange{From: -1000, To: -1}, big[len(big)-1000:]},
		{[]string{"docs", "a b.txt"}, nil, files["docs/a b.txt"]},
	} {
		req := verify.Request{Root: root, Path: tc.path, Range: tc.rng}
		url := site + strings.TrimPrefix(FallbackPrefix, "/") + strings.TrimPrefix(req.Target(), "/ipfs")
		resp, body := nw.get(t, url)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.ipld.car") {
			t.Fatalf("GET %s: %s %v %s", url, resp.Status, resp.Header, body)
		}
		vr := verify.NewReader(bytes.NewReader(body), req, verify.Options{})
		if _, err := vr.Entity(); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		got, err := io.ReadAll(vr)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("%s: verified %d bytes (err %v), want %d", url, len(got), err, len(tc.want))
		}
	}
	if got := nw.counter(t, "verity_gateway_bytes_served_total", "kind", "car_fallback"); got < float64(len(big)) {
		t.Fatalf("car_fallback bytes = %v", got)
	}
	foreign := testCID(t, "not this site")
	resp, _ := nw.get(t, site+".verity/v1/ipfs/"+foreign+"?format=car&dag-scope=entity")
	if resp.StatusCode != 403 {
		t.Fatalf("foreign CID: %s", resp.Status)
	}
	// A sub-CID of the site is not a root either.
	sub := leafCID(t, files["style.css"], 0)
	resp, _ = nw.get(t, site+".verity/v1/ipfs/"+sub.String()+"?format=car&dag-scope=entity")
	if resp.StatusCode != 403 {
		t.Fatalf("non-root CID: %s", resp.Status)
	}
}

func TestSessionRealNodes(t *testing.T) {
	nw := startNetwork(t, 2, sitetest.Files())
	resp, body := nw.get(t, nw.SiteURL("demo")+".verity/v1/session")
	if resp.StatusCode != 200 {
		t.Fatalf("session: %s", resp.Status)
	}
	for i := range nw.nodes {
		rec := nw.nodes[i].Record().Record
		for _, want := range []string{rec.NodeID, rec.HTTP, rec.WebTransport, nw.root} {
			if !bytes.Contains(body, []byte(want)) {
				t.Fatalf("session lacks %q: %s", want, body)
			}
		}
	}
}

func TestHTTPNodesRealNodes(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 2, files)
	urls := []string{nw.nodes[0].HTTPURL(), nw.nodes[1].HTTPURL()}
	tg := startGateway(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": nw.root}),
		Nodes: NewHTTPNodes(HTTPNodesConfig{URLs: urls}),
	})
	resp, body := tg.get(t, tg.SiteURL("demo")+"style.css")
	if resp.StatusCode != 200 || !bytes.Equal(body, files["style.css"]) {
		t.Fatalf("style.css via HTTPNodes: %s %q", resp.Status, body)
	}
	resp, body = tg.get(t, tg.SiteURL("demo")+".verity/v1/session")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(nw.nodeID(0))) || !bytes.Contains(body, []byte(nw.nodeID(1))) {
		t.Fatalf("session via HTTPNodes: %s %s", resp.Status, body)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
