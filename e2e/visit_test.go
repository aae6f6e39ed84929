package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/node"
)

func nodeID(n *node.Node) string { return fmt.Sprint(n.ID()) }

// The first visit is served by the gateway: the page renders and the
// gateway's html byte counter grows.
func TestFirstVisitThroughGateway(t *testing.T) {
	e := newEnv(t, envConfig{})
	before := bytesServed(e.gatewayMetrics(), "html")
	e.visit()
	after := bytesServed(e.gatewayMetrics(), "html")
	if after <= before {
		t.Fatalf("gateway html bytes served %v → %v: the first HTML did not come through the gateway", before, after)
	}
	text, err := browser.Eval[string](e.ctx(10*time.Second), e.b, `document.body ? document.body.innerText : ''`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(text) == "" {
		t.Fatalf("the page rendered no text")
	}
	// The loader is on the page and registers the worker.
	if err := e.b.WaitWorkerActive(e.ctx(30 * time.Second)); err != nil {
		t.Fatalf("verity.js did not register an active worker: %v", err)
	}
}

// Once the worker controls the page, every asset comes from a node over
// WebTransport, verified and byte-equal, and none through the gateway.
func TestAssetsOverWebTransport(t *testing.T) {
	e := newEnv(t, envConfig{})
	as := assets(e.files)
	if big := largest(as); big.Size <= 1<<20 {
		t.Fatalf("the demo site needs an asset larger than 1 MiB; the largest is %s (%d bytes)", big.Path, big.Size)
	}
	e.controlled()

	gw0, nodes0 := e.gatewayMetrics(), e.nodeMetrics()
	if err := e.b.Reload(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.b.Controlled(e.ctx(5 * time.Second)); err != nil || !ok {
		t.Fatalf("after a reload the worker does not control the page (controlled=%v, err=%v)", ok, err)
	}
	ids := e.nodeIDs()

	// The page's own subresources went through the worker and a node, or
	// through the worker and its cache of what a node sent before.
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.Name, e.site+"/") || strings.Contains(r.Name, "/.verity/") ||
			strings.HasSuffix(r.Name, "/verity.js") || strings.HasSuffix(r.Name, "/verity-sw.js") {
			continue
		}
		tr, _ := r.Timing("verity")
		n, _ := r.Timing("node")
		if tr != "cache" && (tr != "webtransport" || !ids[n]) {
			t.Errorf("%s %s: Server-Timing %s, want verity=webtransport and a node id, or verity=cache", r.EntryType, r.Name, describe(r.ServerTiming))
		}
	}

	// Every asset, fetched by the page, arrives byte-equal from a node.
	for _, f := range as {
		res := e.fetchFile(f)
		tr, _ := res.Timing("verity")
		n, _ := res.Timing("node")
		if tr != "webtransport" || !ids[n] {
			t.Errorf("/%s: Server-Timing %q, want verity=webtransport and a node id of %v", f.Path, res.Headers["server-timing"], ids)
		}
		t.Logf("/%s: %d bytes, %s", f.Path, res.Size, res.Headers["server-timing"])
		if ct := res.Headers["content-type"]; ct == "" {
			t.Errorf("/%s: no Content-Type", f.Path)
		}
	}

	gw1, nodes1 := e.gatewayMetrics(), e.nodeMetrics()
	for _, kind := range []string{"html", "asset", "car_fallback"} {
		if a, b := bytesServed(gw0, kind), bytesServed(gw1, kind); b != a {
			t.Errorf("gateway %s bytes served grew %v → %v while the worker was in control", kind, a, b)
		}
	}
	wt := map[string]string{"transport": "webtransport"}
	if a, b := sumNodes(nodes0, "verity_node_requests_total", wt), sumNodes(nodes1, "verity_node_requests_total", wt); b <= a {
		t.Errorf("nodes' verity_node_requests_total{transport=webtransport} %v → %v: no request reached a node over WebTransport", a, b)
	}
	t.Logf("gateway bytes served: before %s after %s", describe(gw0.Select("verity_gateway_bytes_served_total")), describe(gw1.Select("verity_gateway_bytes_served_total")))
	t.Logf("node WebTransport bytes sent: %v → %v", nodeBytes(nodes0), nodeBytes(nodes1))
	if a, b := nodeBytes(nodes0), nodeBytes(nodes1); b-a < float64(largest(as).Size) {
		t.Errorf("nodes' WebTransport bytes sent %v → %v: less than the largest asset", a, b)
	}

	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	big := largest(as)
	if r, ok := workerStat(stats, "/"+big.Path); !ok || r.Transport != "webtransport" || r.Bytes != big.Size || r.Error != "" {
		t.Errorf("verity-stats for /%s = %+v (found %v), want webtransport, %d bytes, no error", big.Path, r, ok, big.Size)
	}
}

// nodeBytes adds the node metrics that count body bytes sent over
// WebTransport (any verity_node_*bytes* counter with transport=webtransport).
func nodeBytes(ms map[string]browser.Metrics) float64 {
	var s float64
	for _, m := range ms {
		for _, sm := range m {
			if strings.HasPrefix(sm.Name, "verity_node_") && strings.Contains(sm.Name, "bytes") &&
				sm.Labels["transport"] == "webtransport" {
				s += sm.Value
			}
		}
	}
	return s
}
