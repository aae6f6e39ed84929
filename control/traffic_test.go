package control

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
)

// TestSiteTrafficReported: what visitors' workers report of a site's
// requests (from nodes, from their cache, through the gateway) reaches
// the site's history through the bus; reports over the bounds, malformed
// or beyond the per-address rate are refused and count nothing, and a
// report counts for the site of the origin it was posted to only.
func TestSiteTrafficReported(t *testing.T) {
	bus := openBus(t, "gw-traffic")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, Faucet: true},
		gateway.Config{MeterInterval: time.Hour, CreditLimit: -1, TrafficInterval: 50 * time.Millisecond, TrafficRate: 0.001, TrafficBurst: 3})
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, http.StatusCreated, nil)
	for _, s := range []string{"blog", "shop"} {
		tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"`+s+`","account":"acme"}`, http.StatusCreated, nil)
		if _, err := tg.ctl.Sites().PublishFor(t.Context(), s, testCID(t, s), "acme", 1); err != nil {
			t.Fatal(err)
		}
	}
	post := func(site, body string) int {
		t.Helper()
		resp, _ := tg.do(t, "POST", tg.SiteURL(site)+gateway.TrafficPath[1:], strings.NewReader(body), "Content-Type", "application/json")
		return resp.StatusCode
	}
	for _, c := range []struct {
		site, body string
		want       int
	}{
		{"blog", `{"nodes":7,"cache":5,"fallback":2}`, http.StatusNoContent},
		{"blog", `{"nodes":1001}`, http.StatusBadRequest},
		{"shop", `{"nodes":1,"cache":1}`, http.StatusNoContent},
		{"blog", `{"nodes":1}`, http.StatusTooManyRequests}, // the address's burst of 3 is spent
	} {
		if got := post(c.site, c.body); got != c.want {
			t.Fatalf("POST %s to %s: %d, want %d", c.body, c.site, got, c.want)
		}
	}
	if resp, _ := tg.get(t, tg.SiteURL("blog")+gateway.TrafficPath[1:]); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET traffic: %d", resp.StatusCode)
	}
	want := map[string]int64{"requests_nodes": 7, "requests_cache": 5, "requests_fallback": 2}
	var h api.Series
	testutil.Eventually(t, 10*time.Second, "blog's reported requests in its history", func() bool {
		tg.apiJSON(t, "GET", "/v1/accounts/acme/history?since=1h&step=5m&site=blog", testAdmin, "", http.StatusOK, &h)
		for k, v := range want {
			if sumSeries(h.Values[k]) != v {
				return false
			}
		}
		return true
	})
	if _, ok := h.Values["requests_gateway"]; !ok {
		t.Fatalf("no requests_gateway series: %v", h.Values)
	}
}

// sumSeries adds up a history column.
func sumSeries(col []int64) (n int64) {
	for _, v := range col {
		n += v
	}
	return n
}
