package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
)

// TestScores: a worker's scores document feeds the router (RTT and error
// level of the nodes the gateway lists, from the client's network), and
// the ranking changes; unknown nodes are ignored; malformed, oversized and
// too frequent documents are refused.
func TestScores(t *testing.T) {
	now := time.Now()
	a := signedRecord(t, 1, "http://127.0.0.1:4001", now)
	b := signedRecord(t, 2, "http://127.0.0.1:4002", now)
	router := coordinator.NewRouter(coordinator.RouterConfig{})
	tg := startGateway(t, Config{
		Sites:       NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:       StaticRecords(a, b),
		ScoreSink:   router,
		ScoresBurst: 8,
	})
	url := tg.SiteURL("demo") + ".verity/v1/scores"
	post := func(body string) int {
		t.Helper()
		resp, _ := tg.do(t, http.MethodPost, url, strings.NewReader(body), "Content-Type", "text/plain")
		return resp.StatusCode
	}
	na, nb := a.Record.NodeID, b.Record.NodeID
	cands := []coordinator.Candidate{{Node: na}, {Node: nb}}
	client := netip.MustParseAddr("127.0.0.1")
	rank := func() string { return router.Rank(client, "", cands)[0].Node }
	// na is the faster node and serves well: first.
	if c := post(fmt.Sprintf("verity-scores 1\n%s 5000 1000000 0 4 1800000000000\n%s 20000 1000000 0 4 1800000000000\nnUNKNOWN 1000 1 0 1 1\n", na, nb)); c != 204 {
		t.Fatalf("scores: %d", c)
	}
	if d, ok := router.RTT(client, na); !ok || d != 5*time.Millisecond {
		t.Fatalf("RTT of %s: %v %v", na, d, ok)
	}
	if _, ok := router.RTT(client, "nUNKNOWN"); ok {
		t.Fatal("a node the gateway does not list was fed to the router")
	}
	if got := rank(); got != na {
		t.Fatalf("fast and clean: %s first, want %s", got, na)
	}
	// na starts failing this network's workers: nb goes first.
	if c := post(fmt.Sprintf("verity-scores 1\n%s 5000 1000000 9000 5 1800000000000\n", na)); c != 204 {
		t.Fatalf("scores: %d", c)
	}
	if e := router.Errors(client, na); e != 9 {
		t.Fatalf("errors of %s: %v", na, e)
	}
	if got := rank(); got != nb {
		t.Fatalf("na failing: %s first, want %s", got, nb)
	}
	// A line repeated in one document is one sample, not as many: nb's
	// average moves once (0.25 × 100), not to the cap.
	if c := post("verity-scores 1\n" + strings.Repeat(fmt.Sprintf("%s 20000 1000000 100000 4 1800000000000\n", nb), 50)); c != 204 {
		t.Fatalf("scores: %d", c)
	}
	if e := router.Errors(client, nb); e != 100 {
		t.Fatalf("errors of %s after one document: %v, want 100 (its first sample)", nb, e)
	}
	if c := post("verity-scores 1\n" + strings.Repeat(fmt.Sprintf("%s 20000 1000000 0 4 1800000000000\n", nb), 50)); c != 204 {
		t.Fatalf("scores: %d", c)
	}
	if e := router.Errors(client, nb); e != 75 {
		t.Fatalf("errors of %s after a clean document repeated 50 times: %v, want 75 (one sample)", nb, e)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"malformed", "hello", 400},
		{"bad line", "verity-scores 1\nx 1 2\n", 400},
		{"oversized", "verity-scores 1\n" + strings.Repeat("n 1 1 0 1 1\n", 3000), 413},
		{"too many lines", "verity-scores 1\n" + strings.Repeat("n 1 1 0 1 1\n", 300), 400},
		{"rate limited (ninth post in a row)", "verity-scores 1\n", 429},
	} {
		if c := post(tc.body); c != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, c, tc.want)
		}
	}
	resp, _ := tg.get(t, url)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET scores: %d %v", resp.StatusCode, resp.Header)
	}
}
