package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// When no WebTransport connection to a node can be opened, the page still
// renders and every asset arrives through the gateway fallback, verified
// and byte-equal.
func TestNoWebTransportFallsBackToGateway(t *testing.T) {
	e := newEnv(t, envConfig{browserFlags: browser.NoWebTransportFlags})
	e.controlled()
	gw0 := e.gatewayMetrics()
	if err := e.b.Reload(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.visitTitle("index.html")
	if ok, err := e.b.Controlled(e.ctx(5 * time.Second)); err != nil || !ok {
		t.Fatalf("after a reload the worker does not control the page (controlled=%v, err=%v)", ok, err)
	}
	as := assets(e.files)
	var total int64
	for _, f := range as {
		res := e.fetchFile(f)
		tr, _ := res.Timing("verity")
		n, _ := res.Timing("node")
		if tr != "gateway" || n != "gateway" {
			t.Errorf("/%s: Server-Timing %q, want verity=gateway, node=gateway", f.Path, res.Headers["server-timing"])
		}
		total += f.Size
	}
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 || rs[0].EntryType != "navigation" {
		t.Fatalf("no navigation entry")
	}
	if tr, _ := rs[0].Timing("verity"); tr != "gateway" {
		t.Errorf("navigation: Server-Timing %s, want verity=gateway", describe(rs[0].ServerTiming))
	}
	gw1 := e.gatewayMetrics()
	if a, b := bytesServed(gw0, "car_fallback"), bytesServed(gw1, "car_fallback"); b-a < float64(total) {
		t.Errorf("gateway car_fallback bytes %v → %v, want at least the %d bytes of the assets", a, b, total)
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range as {
		r, ok := workerStat(stats, "/"+f.Path)
		if !ok || r.Transport != "gateway" || r.Error != "" || r.Bytes != f.Size {
			t.Errorf("verity-stats for /%s = %+v (found %v), want gateway, %d bytes, no error", f.Path, r, ok, f.Size)
		}
	}
	if reports, err := e.b.WorkerReports(e.ctx(10 * time.Second)); err == nil {
		var reasons []string
		for _, r := range reports {
			reasons = append(reasons, r.Node[:min(8, len(r.Node))]+":"+r.Reason)
		}
		t.Logf("worker reports: %s", strings.Join(reasons, " "))
	}
}
