package coordinator_test

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
)

// TestRouterErrorReports: synthetic worker reports (RTT and error levels,
// as the gateway feeds them from POST /.verity/v1/scores) change the
// ranking for the reporting network only, and recover when errors stop.
func TestRouterErrorReports(t *testing.T) {
	r := coordinator.NewRouter(coordinator.RouterConfig{Table: syntheticTable()})
	cands := []coordinator.Candidate{
		{Node: "a", Addr: netip.MustParseAddr("203.0.113.5")},
		{Node: "b", Addr: netip.MustParseAddr("203.0.113.6")},
	}
	client := netip.MustParseAddr("198.51.100.1") // AS64497
	other := netip.MustParseAddr("192.0.2.1")     // AS64496
	for range 4 {
		r.ReportRTT(client, "a", 10*time.Millisecond)
		r.ReportRTT(client, "b", 30*time.Millisecond)
	}
	if got := names(r.Rank(client, "", cands)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("by RTT: %v", got)
	}
	// a fails the network's workers: it goes behind b despite its RTT.
	for range 4 {
		r.ReportErrors(client, "a", 5)
		r.ReportErrors(client, "b", 0)
	}
	if got := names(r.Rank(client, "", cands)); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("a reported failing: %v", got)
	}
	if e := r.Errors(client, "a"); e < 2 || e > 5 {
		t.Fatalf("a's error level %v", e)
	}
	if e := r.Errors(client, "b"); e != 0 {
		t.Fatalf("b's error level %v, want 0 (zero reports are not stored)", e)
	}
	// Other networks are not affected.
	if got := names(r.Rank(other, "", cands)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("other network: %v", got)
	}
	// Clean reports bring a back first.
	for range 20 {
		r.ReportErrors(client, "a", 0)
	}
	if got := names(r.Rank(client, "", cands)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a recovered: %v (level %v)", got, r.Errors(client, "a"))
	}
	// Bad samples: clamped or ignored.
	r.ReportErrors(client, "c", math.NaN())
	r.ReportErrors(client, "", 3)
	if e := r.Errors(client, "c"); e != 0 {
		t.Fatalf("NaN kept: %v", e)
	}
	r.ReportErrors(client, "c", 1e9)
	if e := r.Errors(client, "c"); e != coordinator.MaxReportedErrors {
		t.Fatalf("huge sample: %v, want clamped to %d", e, coordinator.MaxReportedErrors)
	}
	r.ReportErrors(client, "d", -5)
	if e := r.Errors(client, "d"); e != 0 {
		t.Fatalf("negative sample: %v", e)
	}
}
