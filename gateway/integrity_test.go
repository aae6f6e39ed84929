package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/internal/verify"
)

// errorSink records the error levels reported to the router.
type errorSink struct {
	mu   sync.Mutex
	errs map[string]float64 // node → sum of levels
}

func (s *errorSink) ReportRTT(netip.Addr, string, time.Duration) {}
func (s *errorSink) ReportErrors(_ netip.Addr, node string, errs float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string]float64{}
	}
	s.errs[node] += errs
}
func (s *errorSink) level(node string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs[node]
}

// fallbackURL is the gateway's CAR fallback URL of req on site.
func fallbackURL(site string, req verify.Request) string {
	return site + strings.TrimPrefix(FallbackPrefix, "/") + strings.TrimPrefix(req.Target(), "/ipfs")
}

// fetchRaw GETs url and returns the response and what could be read of
// its body, with the read error (a broken transfer) rather than failing.
func fetchRaw(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// The attack: one node has a corrupt block in the middle of a file, and
// many clients ask the gateway's CAR fallback for it at once, each trying
// that node first. Every response must be the complete, verifiable CAR
// (the gateway resumes from the other node), the node is charged with the
// failure (metrics and the router), and once every node has the bad block
// no response ends cleanly.
func TestFallbackFailedNodeNeverEndsClean(t *testing.T) {
	files := sitetest.Files()
	files["media/zeros.bin"] = make([]byte, 3*sitetest.ChunkSize+100) // repeated leaves: dups
	sink := &errorSink{}
	nw := startNetworkWith(t, 2, files, func(c *Config) {
		c.ScoreSink = sink
		c.NodeBackoff = time.Nanosecond // node 1 is tried first every time
	})
	site := nw.SiteURL("demo")
	root, err := cid.Parse(nw.root)
	if err != nil {
		t.Fatal(err)
	}
	big := files["media/big.bin"]
	corrupt(t, nw.nodes[0], leafCID(t, big, 2))

	check := func(req verify.Request, want []byte) error {
		resp, body, err := fetchRaw(t, nw.client, fallbackURL(site, req))
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
			return errors.New("Content-Length " + cl + " for " + strconv.Itoa(len(body)) + " bytes")
		}
		vr := verify.NewReader(bytes.NewReader(body), req, verify.Options{})
		got, err := io.ReadAll(vr)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errors.New("verified body differs")
		}
		return nil
	}
	bigReq := verify.Request{Root: root, Path: []string{"media", "big.bin"}}
	const clients = 20
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- check(bigReq, big)
		}()
	}
	wg.Wait()
	close(errs)
	bad := 0
	var first error
	for err := range errs {
		if err != nil {
			bad++
			first = cmpOr(first, err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d fallback responses were not the complete CAR; first: %v", bad, clients, first)
	}
	if err := check(verify.Request{Root: root, Path: []string{"media", "zeros.bin"}}, files["media/zeros.bin"]); err != nil {
		t.Fatalf("a file with repeated blocks: %v", err)
	}
	if err := check(verify.Request{Root: root, Path: []string{"media", "big.bin"}, Range: &verify.ByteRange{From: 600000, To: -1}}, big[600000:]); err != nil {
		t.Fatalf("a range: %v", err)
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total", "node", nw.nodeID(0), "reason", "verify"); got < 1 {
		t.Fatalf("node 1's failures counted %v", got)
	}
	if got := nw.counter(t, "verity_gateway_node_failures_total", "node", nw.nodeID(1)); got != 0 {
		t.Fatalf("node 2's failures counted %v", got)
	}
	if sink.level(nw.nodeID(0)) <= 0 || sink.level(nw.nodeID(1)) != 0 {
		t.Fatalf("errors reported to the router: node 1 %v, node 2 %v", sink.level(nw.nodeID(0)), sink.level(nw.nodeID(1)))
	}

	// No node can finish: the transfer breaks, it never ends clean.
	corrupt(t, nw.nodes[1], leafCID(t, big, 2))
	for range 5 {
		resp, body, err := fetchRaw(t, nw.client, fallbackURL(site, bigReq))
		if err == nil && resp.StatusCode == 200 {
			t.Fatalf("a CAR no node could complete ended clean: %d bytes, headers %v", len(body), resp.Header)
		}
		if resp != nil && resp.StatusCode == 200 && resp.Header.Get("Content-Length") != "" {
			t.Fatalf("an incomplete CAR was announced with Content-Length %s", resp.Header.Get("Content-Length"))
		}
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// When no node can serve a first visit, the visitor gets a 502 (or a 504
// when nodes time out) with a message, not a closed connection.
func TestFirstVisitNoNodeAnswers(t *testing.T) {
	files := sitetest.Files()
	sink := &errorSink{}
	nw := startNetworkWith(t, 2, files, func(c *Config) { c.ScoreSink = sink })
	site := nw.SiteURL("demo")
	big := files["media/big.bin"]
	stall := stallingNode(t, nw.nodes[0].HTTPURL(), "/ipfs/"+nw.root+"/media/big.bin?format=car&dag-scope=entity")
	for _, n := range nw.nodes {
		corrupt(t, n, leafCID(t, big, 0))
	}
	for _, hdr := range [][]string{nil, {"Range", "bytes=1000-2000"}} {
		resp, body, err := fetchRaw(t, nw.client, site+"media/big.bin", hdr...)
		if err != nil {
			t.Fatalf("%v: no answer: %v", hdr, err)
		}
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "no node could serve") {
			t.Fatalf("%v: %s %q, want 502", hdr, resp.Status, body)
		}
	}
	for i := range nw.nodes {
		if sink.level(nw.nodeID(i)) <= 0 {
			t.Fatalf("node %d's failure not reported to the router", i+1)
		}
	}

	// A node that resolves the file and then sends nothing more: 504.
	tg := startGateway(t, Config{
		Sites:       NewStaticSites(map[string]string{"demo": nw.root}),
		Nodes:       StaticRecords(signedRecord(t, 7, stall, time.Now())),
		NodeTimeout: 500 * time.Millisecond,
	})
	resp, body, err := fetchRaw(t, tg.client, tg.SiteURL("demo")+"media/big.bin")
	if err != nil {
		t.Fatalf("stalled node: no answer: %v", err)
	}
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("stalled node: %s %q, want 504", resp.Status, body)
	}
}

// A node that trickles its CAR, a byte at a time, each well within
// NodeTimeout: before its entity resolves, or after. It is held to
// 64 KiB per NodeTimeout of waiting on it, so the request ends with 504
// once that passes. Before, each byte restarted the timer, and the
// visitor's request waited for as long as the node kept trickling.
func TestTricklingNodeIsCutOff(t *testing.T) {
	files := sitetest.Files()
	nw := startNetworkWith(t, 1, files, nil)
	target := "/ipfs/" + nw.root + "/media/big.bin?format=car&dag-scope=entity"
	for name, resolved := range map[string]bool{"before the entity": false, "after the entity": true} {
		t.Run(name, func(t *testing.T) {
			node := tricklingNode(t, nw.nodes[0].HTTPURL(), target, resolved)
			tg := startGateway(t, Config{
				Sites:       NewStaticSites(map[string]string{"demo": nw.root}),
				Nodes:       StaticRecords(signedRecord(t, 7, node, time.Now())),
				NodeTimeout: testutil.Scale(500 * time.Millisecond),
			})
			c := *tg.client
			c.Timeout = 20 * time.Second
			resp, body, err := fetchRaw(t, &c, tg.SiteURL("demo")+"media/big.bin")
			if err != nil {
				t.Fatalf("trickling node: no answer: %v", err)
			}
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("trickling node: %s %q, want 504", resp.Status, body)
			}
		})
	}
}

// tricklingNode is a hostile node in front of the real one at nodeURL: it
// answers every request with the real node's CAR for target (after its
// path and entity root when resolved, else from its start) sent a byte
// every 20 ms, for at most 30 s.
func tricklingNode(t *testing.T, nodeURL, target string, resolved bool) string {
	t.Helper()
	full, cut := carToFirstRaw(t, nodeURL, target)
	if !resolved {
		cut = 0
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
		w.WriteHeader(200)
		w.Write(full[:cut])
		w.(http.Flusher).Flush()
		for i := cut; i < len(full) && i < cut+1500; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			w.Write(full[i : i+1])
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// stallingNode is a hostile node in front of the real one at nodeURL: it
// answers every request with the real node's CAR cut just before the
// first raw block of target's response (so the path and the entity root
// verify), then holds the response open without sending anything more.
func stallingNode(t *testing.T, nodeURL, target string) string {
	t.Helper()
	full, cut := carToFirstRaw(t, nodeURL, target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
		w.WriteHeader(200)
		w.Write(full[:cut])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// carToFirstRaw fetches target's CAR from the node at nodeURL and returns
// it, with the offset of its first raw block: what comes before is the
// path and the entity root.
func carToFirstRaw(t *testing.T, nodeURL, target string) ([]byte, int) {
	t.Helper()
	resp, err := http.Get(nodeURL + target)
	if err != nil {
		t.Fatal(err)
	}
	full, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := car.NewReader(bytes.NewReader(full), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cut := cr.Offset()
	for {
		c, _, err := cr.Next()
		if err != nil {
			t.Fatalf("no raw block in the CAR of %s: %v", target, err)
		}
		if c.Codec == cid.CodecRaw {
			break
		}
		cut = cr.Offset()
	}
	return full, int(cut)
}

// countingNode is a node in front of the real one at nodeURL that counts
// the requests it gets, or answers every one with status when status is
// not 0.
func countingNode(t *testing.T, nodeURL string, status int) (string, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if status != 0 {
			http.Error(w, "refused", status)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// A client's malformed or oversized request is refused by the gateway
// before any node is asked, and a node refusing a request as bad (4xx) is
// not a node failure.
func TestClientErrorsNotChargedToNodes(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 1, files)
	sink := &errorSink{}
	now := time.Now()
	good, asked := countingNode(t, nw.nodes[0].HTTPURL(), 0)
	picky, refused := countingNode(t, nw.nodes[0].HTTPURL(), http.StatusBadRequest)
	goodRec, pickyRec := signedRecord(t, 8, good, now), signedRecord(t, 9, picky, now)
	tg := startGateway(t, Config{
		Sites:     NewStaticSites(map[string]string{"demo": nw.root}),
		Nodes:     StaticRecords(goodRec, pickyRec),
		ScoreSink: sink,
	})
	site := tg.SiteURL("demo")
	deep := strings.Repeat("a/", 4000) + "a"
	long := strings.Repeat("x", MaxRequestURIBytes)
	for _, tc := range []struct {
		path string
		code int
	}{
		{deep, http.StatusBadRequest},
		{long, http.StatusRequestURITooLong},
		{".verity/v1/ipfs/" + nw.root + "/" + deep + "?format=car&dag-scope=entity", http.StatusBadRequest},
		{".verity/v1/ipfs/" + nw.root + "/" + long + "?format=car&dag-scope=entity", http.StatusRequestURITooLong},
	} {
		resp, body := tg.get(t, site+tc.path)
		if resp.StatusCode != tc.code {
			t.Fatalf("%.60s…: %s %q, want %d", tc.path, resp.Status, body, tc.code)
		}
	}
	if asked.Load() != 0 || refused.Load() != 0 {
		t.Fatalf("nodes were asked %d + %d times for requests the gateway refuses", asked.Load(), refused.Load())
	}

	// The picky node refuses (400) what the good one serves: nobody is
	// charged, and the visitor gets the file.
	tg.health.fail(goodRec.Record.NodeID) // the picky node first
	resp, body := tg.get(t, site+"style.css")
	if resp.StatusCode != 200 || !bytes.Equal(body, files["style.css"]) || refused.Load() == 0 {
		t.Fatalf("style.css: %s %q (picky node asked %d times)", resp.Status, body, refused.Load())
	}
	// Only the picky node: its 400 is the answer, still nobody's failure.
	tg2 := startGateway(t, Config{
		Sites:     NewStaticSites(map[string]string{"demo": nw.root}),
		Nodes:     StaticRecords(pickyRec),
		ScoreSink: sink,
	})
	if resp, body := tg2.get(t, tg2.SiteURL("demo")+"style.css"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("only a refusing node: %s %q, want 400", resp.Status, body)
	}
	for _, g := range []*testGateway{tg, tg2} {
		if got := g.counter(t, "verity_gateway_node_failures_total"); got != 0 {
			t.Fatalf("client errors counted as %v node failures", got)
		}
	}
	if sink.level(goodRec.Record.NodeID) != 0 || sink.level(pickyRec.Record.NodeID) != 0 {
		t.Fatal("client errors reported to the router")
	}
}

// A node's URLs are proven when it joins, but a host name can resolve
// elsewhere later (DNS rebinding), and a record can name any address: the
// gateway's own fetches never connect to a private, loopback or
// link-local address unless told to (AllowPrivateAddrs). Here a "node"
// names a service on loopback; the visitor gets a 502, the service no
// request.
func TestGatewayRefusesPrivateNodeAddresses(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "internal admin", http.StatusOK)
	}))
	defer internal.Close()
	tg := startGatewayAsIs(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": testCID(t, "rebinding")}),
		Nodes: StaticRecords(signedRecord(t, 9, internal.URL, time.Now())),
	})
	resp, body, err := fetchRaw(t, tg.client, tg.SiteURL("demo")+"index.html")
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("%s %q, want 502", resp.Status, body)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the gateway sent %d requests to a loopback address", n)
	}
}
