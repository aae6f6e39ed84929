package control

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// TestHistorySurvivesRestart: an account's traffic, spend and balance
// over time and the network's event counts come from what the bus keeps,
// so a gateway restarted on the same data directory answers the same
// series; a site's owner reads its account's, not another's; bad ranges
// are refused with a clear error.
func TestHistorySurvivesRestart(t *testing.T) {
	store, dataDir := t.TempDir(), t.TempDir()
	open := func() *events.Bus {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := events.Open(ctx, events.Config{StoreDir: store, Name: "gw-history", Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := Config{AdminToken: testAdmin, Faucet: true, DataDir: dataDir}
	gwCfg := gateway.Config{MeterInterval: time.Hour, CreditLimit: -1}
	bus := open()
	tg, stop := startStack(t, bus, cfg, gwCfg)
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"other"}`, http.StatusCreated, nil)
	var blog api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog","account":"acme"}`, http.StatusCreated, &blog)
	tg.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":5000}`, http.StatusOK, nil)
	if _, err := tg.ctl.ledger.ApplyCharge(t.Context(), ledger.Charge{Account: "acme", Gateway: "gw-x", Seq: 1, Sites: map[string]uint64{"blog": 1000, "shop": 500}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.ctl.Sites().PublishFor(t.Context(), "blog", testCID(t, "v1"), "acme", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Emit(t.Context(), events.TypeNodeReported, events.NodeReported{Node: "n1", Reasons: map[string]int{"bad-block": 4}, Gateway: "gw-x", Sites: map[string]int{"blog": 3, "shop": 1}}); err != nil {
		t.Fatal(err)
	}
	since := url.QueryEscape(time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339))
	read := func(tg *testStack) (acct, site, evs api.Series) {
		t.Helper()
		tg.apiJSON(t, "GET", "/v1/accounts/acme/history?step=1h&since="+since, testAdmin, "", http.StatusOK, &acct)
		tg.apiJSON(t, "GET", "/v1/accounts/acme/history?step=1h&site=blog&since="+since, testAdmin, "", http.StatusOK, &site)
		tg.apiJSON(t, "GET", "/v1/events/history?step=1h&types=site.published,gateway.charged&since="+since, testAdmin, "", http.StatusOK, &evs)
		return
	}
	sum := func(col []int64) (n int64) {
		for _, v := range col {
			n += v
		}
		return n
	}
	acct, site, evs := read(tg)
	if sum(acct.Values["topups"]) != 5000 || sum(acct.Values["gateway"]) != 1500 || sum(acct.Values["nodes"]) != 0 ||
		acct.Values["balance"][len(acct.Times)-1] != 3500 || acct.Values["balance"][0] != 0 {
		t.Fatalf("account history %+v", acct)
	}
	if sum(site.Values["gateway"]) != 1000 || sum(site.Values["reported"]) != 3 {
		t.Fatalf("site history %+v", site)
	}
	if sum(evs.Values["site.published"]) != 1 || sum(evs.Values["gateway.charged"]) != 1 {
		t.Fatalf("events history %+v", evs)
	}
	var perNode api.Series
	tg.apiJSON(t, "GET", "/v1/events/history?types=node.reported,node.audit_failed&group=node&since="+since, testAdmin, "", http.StatusOK, &perNode)
	if len(perNode.Values) != 1 || sum(perNode.Values["node.reported:n1"]) != 4 {
		t.Fatalf("events per node %+v", perNode.Values)
	}

	// A site's owner reads its own account's history only.
	tg.apiJSON(t, "GET", "/v1/accounts/acme/history?site=blog", blog.Token, "", http.StatusOK, nil)
	tg.apiJSON(t, "GET", "/v1/accounts/other/history?site=blog", blog.Token, "", http.StatusForbidden, nil)
	tg.apiJSON(t, "GET", "/v1/events/history", blog.Token, "", http.StatusForbidden, nil)
	tg.apiJSON(t, "GET", "/v1/events/history?group=site", testAdmin, "", http.StatusBadRequest, nil)
	for _, q := range []string{"since=yesterday", "step=0s", "step=1s&since=240h", "since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))} {
		tg.apiJSON(t, "GET", "/v1/accounts/acme/history?"+q, testAdmin, "", http.StatusBadRequest, nil)
	}

	stop()
	bus.Close()
	bus = open()
	t.Cleanup(func() { bus.Close() })
	tg, _ = startStack(t, bus, cfg, gwCfg)
	acct2, site2, evs2 := read(tg)
	for name, pair := range map[string][2]api.Series{"account": {acct, acct2}, "site": {site, site2}, "events": {evs, evs2}} {
		a, b := pair[0], pair[1]
		n := min(len(a.Times), len(b.Times)) // the clock may have crossed into another bucket
		for k, col := range a.Values {
			if !reflect.DeepEqual(col[:n], b.Values[k][:n]) {
				t.Errorf("%s history %s after the restart %v, before %v", name, k, b.Values[k], col)
			}
		}
	}
}

// FuzzSeriesQuery: any since and step either parse into at most
// maxHistoryBuckets buckets ending now, or are refused as a bad request.
func FuzzSeriesQuery(f *testing.F) {
	for _, seed := range [][2]string{{"", ""}, {"24h", "1h"}, {"2025-01-02T03:04:05Z", "1m"}, {"yesterday", "0s"}, {"240h", "1s"},
		{"0001-01-01T00:00:00Z", "1s"}, {"-5h", "1h"}, {"1h", "9223372036s"}} {
		f.Add(seed[0], seed[1])
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &Control{cfg: Config{Now: func() time.Time { return now }}}
	f.Fuzz(func(t *testing.T, since, step string) {
		r, err := http.NewRequest(http.MethodGet, "/?"+url.Values{"since": {since}, "step": {step}}.Encode(), nil)
		if err != nil {
			t.Skip()
		}
		q, err := c.parseSeriesQuery(r)
		if err != nil {
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("since %q step %q: %v answers %d", since, step, err, statusOf(err))
			}
			return
		}
		if q.n < 1 || q.n > maxHistoryBuckets || q.step < time.Second || q.since.After(now) || q.bucket(now) != q.n-1 {
			t.Fatalf("since %q step %q: %+v", since, step, q)
		}
	})
}

// TestHistorySiteOfSession: a site's owner signed in to the console
// reads its account's history of its own site only; naming another
// site (?site=, of another account or the same) is refused, so the
// failures other sites' visitors reported do not leak across sites.
func TestHistorySiteOfSession(t *testing.T) {
	bus := openBus(t, "gw-history-site")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, Faucet: true}, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"other"}`, http.StatusCreated, nil)
	var blog, shop api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog","account":"acme"}`, http.StatusCreated, &blog)
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"shop","account":"other"}`, http.StatusCreated, &shop)
	if _, err := bus.Emit(t.Context(), events.TypeNodeReported, events.NodeReported{Node: "n1", Reasons: map[string]int{"bad-block": 7}, Gateway: "gw-x", Sites: map[string]int{"shop": 7}}); err != nil {
		t.Fatal(err)
	}
	owner, _ := signIn(t, tg.testGateway, `{"credential":"`+blog.Token+`","site":"blog"}`, http.StatusOK)
	owner.call(t, "GET", "/v1/accounts/acme/history?site=blog", "", http.StatusOK)
	owner.call(t, "GET", "/v1/accounts/acme/history", "", http.StatusOK)
	owner.call(t, "GET", "/v1/accounts/acme/history?site=shop", "", http.StatusForbidden)
	// The bearer form names its site in ?site= already.
	tg.apiJSON(t, "GET", "/v1/accounts/acme/history?site=shop", blog.Token, "", http.StatusForbidden, nil)
	// The admin reads any site's.
	tg.apiJSON(t, "GET", "/v1/accounts/other/history?site=shop", testAdmin, "", http.StatusOK, nil)
}

// TestHistoryBounded: a history answer reads up to every account's
// statement and 200,000 events, so one signed-in credential must not
// have the gateway compute them without bound: while a credential has
// its history answers in flight at the cap, a further one is refused
// (429, Retry-After) and another credential still reads; while the
// gateway's are at their cap, any further one is refused at once; one
// after another, a poller is never refused.
func TestHistoryBounded(t *testing.T) {
	bus := openBus(t, "gw-history-bounded")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, Faucet: true}, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, http.StatusCreated, nil)
	var blog api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog","account":"acme"}`, http.StatusCreated, &blog)
	path := "/v1/accounts/acme/history?site=blog&since=0001-01-01T00:00:00Z&step=2000000h"
	refused := func(token string) {
		t.Helper()
		resp, body := tg.do(t, http.MethodGet, tg.URL()+path, nil, "Authorization", "Bearer "+token)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("history at the cap: %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}

	for range 3 * historyPerCredential {
		tg.apiJSON(t, "GET", path, blog.Token, "", http.StatusOK, nil)
	}
	// The credential's answers in flight at the cap (as a loop of
	// concurrent requests would hold them).
	key := sha256.Sum256([]byte(blog.Token))
	for range historyPerCredential {
		tg.ctl.historyHeld.Acquire(key)
	}
	refused(blog.Token)
	tg.apiJSON(t, "GET", "/v1/accounts/acme/history", testAdmin, "", http.StatusOK, nil)
	for range historyPerCredential {
		tg.ctl.historyHeld.Release(key)
	}
	tg.apiJSON(t, "GET", path, blog.Token, "", http.StatusOK, nil)

	// Every one of the gateway's slots taken.
	for range cap(tg.ctl.historySlots) {
		tg.ctl.historySlots <- struct{}{}
	}
	refused(testAdmin)
	for range cap(tg.ctl.historySlots) {
		<-tg.ctl.historySlots
	}
	tg.apiJSON(t, "GET", "/v1/events/history", testAdmin, "", http.StatusOK, nil)
	if n := tg.ctl.historyHeld.Len(); n != 0 {
		t.Fatalf("%d credentials still hold history slots", n)
	}
}
