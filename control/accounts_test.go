package control

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// accountsGateway is a gateway stack with the faucet, metering charged
// only on FlushCharges and Close, and no credit below zero.
func accountsGateway(t *testing.T, faucet bool) (*testStack, *events.Bus) {
	t.Helper()
	bus := openBus(t, "gw-acct")
	tg, _ := startStack(t, bus,
		Config{AdminToken: testAdmin, Replicas: 1, Faucet: faucet},
		gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	return tg, bus
}

// apiJSON sends a JSON API request and decodes the answer into out when
// the status is want; it fails the test on another status.
func (tg *testGateway) apiJSON(t *testing.T, method, path, token, body string, want int, out any) string {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	resp, got := tg.api(t, method, path, token, b)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, want)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, got, err)
		}
	}
	return string(got)
}

func TestAccountsAPI(t *testing.T) {
	tg, _ := accountsGateway(t, true)
	var a api.Account
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme","freezeBelow":1000}`, http.StatusCreated, &a)
	if a.Name != "acme" || a.Balance != 0 || !a.Frozen || a.FreezeBelow != 1000 {
		t.Fatalf("created %+v", a)
	}
	tg.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":5000}`, http.StatusOK, &a)
	if a.Balance != 5000 || a.Frozen || a.ToppedUp != 5000 {
		t.Fatalf("topped up %+v", a)
	}
	tg.apiJSON(t, "GET", "/v1/accounts/acme", testAdmin, "", http.StatusOK, &a)
	if a.Balance != 5000 {
		t.Fatalf("balance %+v", a)
	}
	var st api.Statement
	tg.apiJSON(t, "GET", "/v1/accounts/acme/statement", testAdmin, "", http.StatusOK, &st)
	if len(st.Entries) != 2 || st.Entries[0].Type != api.EntryCreate || st.Entries[1].Type != api.EntryTopUp ||
		st.Entries[1].Bytes != 5000 || st.Entries[1].Balance != 5000 {
		t.Fatalf("statement %+v", st)
	}
	tg.apiJSON(t, "GET", "/v1/accounts/acme/statement?type=topup&limit=1&since=2000-01-01T00:00:00Z", testAdmin, "", http.StatusOK, &st)
	if len(st.Entries) != 1 || st.Entries[0].Type != api.EntryTopUp {
		t.Fatalf("filtered statement %+v", st)
	}
	var list api.AccountList
	tg.apiJSON(t, "GET", "/v1/accounts", testAdmin, "", http.StatusOK, &list)
	if len(list.Accounts) != 1 || list.Accounts[0].Name != "acme" {
		t.Fatalf("list %+v", list)
	}
	var d api.Dashboard
	tg.apiJSON(t, "GET", "/v1/accounts/acme/dashboard", testAdmin, "", http.StatusOK, &d)
	if d.Account.Balance != 5000 || len(d.TopUps) != 1 || d.Spend.Total != 0 {
		t.Fatalf("dashboard %+v", d)
	}
	siteToken := tg.createSite(t, "blog")

	// Bad requests, each with its status and a message naming the problem.
	node := strings.Repeat("a", 52)
	for _, c := range []struct {
		name, method, path, token, body string
		want                            int
		msg                             string
	}{
		{"unknown account", "GET", "/v1/accounts/nobody", testAdmin, "", 404, "unknown account"},
		{"unknown topup", "POST", "/v1/accounts/nobody/topup", testAdmin, `{"bytes":1}`, 404, "unknown account"},
		{"unknown statement", "GET", "/v1/accounts/nobody/statement", testAdmin, "", 404, "unknown account"},
		{"unknown dashboard", "GET", "/v1/accounts/nobody/dashboard", testAdmin, "", 404, "unknown account"},
		{"invalid name", "GET", "/v1/accounts/Bad%20Name", testAdmin, "", 400, "invalid account name"},
		{"invalid create", "POST", "/v1/accounts", testAdmin, `{"name":"UPPER"}`, 400, "invalid account name"},
		{"negative threshold", "POST", "/v1/accounts", testAdmin, `{"name":"x","freezeBelow":-1}`, 400, "freezeBelow"},
		{"bad body", "POST", "/v1/accounts", testAdmin, `{`, 400, "body"},
		{"exists", "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, 409, "exists"},
		{"zero topup", "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":0}`, 400, "bytes 0"},
		{"bad since", "GET", "/v1/accounts/acme/statement?since=yesterday", testAdmin, "", 400, "since"},
		{"bad type", "GET", "/v1/accounts/acme/statement?type=refund", testAdmin, "", 400, "type"},
		{"bad limit", "GET", "/v1/accounts/acme/statement?limit=0", testAdmin, "", 400, "limit"},
		{"no token", "GET", "/v1/accounts/acme", "", "", 401, "missing token"},
		{"no token topup", "POST", "/v1/accounts/acme/topup", "", `{"bytes":1}`, 401, "missing token"},
		{"wrong token", "GET", "/v1/accounts/acme", "vat_wrong", "", 403, "not the admin token"},
		{"site token", "GET", "/v1/accounts/acme/dashboard", siteToken, "", 403, "not the admin token"},
		{"site token create", "POST", "/v1/accounts", siteToken, `{"name":"mine"}`, 403, "not the admin token"},
		{"earnings no token", "GET", "/v1/nodes/n" + node + "/earnings", "", "", 401, "missing token"},
		{"earnings bad id", "GET", "/v1/nodes/nope/earnings", testAdmin, "", 400, "invalid node id"},
		{"site for unknown account", "POST", "/v1/sites", testAdmin, `{"name":"shop","account":"nobody"}`, 404, "verity accounts create nobody"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := tg.apiJSON(t, c.method, c.path, c.token, c.body, c.want, nil)
			if !strings.Contains(got, c.msg) {
				t.Fatalf("%s: %s, want it to mention %q", c.name, got, c.msg)
			}
		})
	}
	var e api.Earnings
	tg.apiJSON(t, "GET", "/v1/nodes/n"+node+"/earnings", testAdmin, "", http.StatusOK, &e)
	if e.Earned != 0 || e.Node != "n"+node {
		t.Fatalf("earnings %+v", e)
	}

	// Without the faucet, top-ups are refused.
	off, _ := accountsGateway(t, false)
	off.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme"}`, http.StatusCreated, nil)
	if got := off.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":1}`, http.StatusForbidden, nil); !strings.Contains(got, "faucet") {
		t.Fatalf("faucet off: %s", got)
	}
}

// TestMetering: bytes served on the HTTPS path are charged to the site's
// account, freeze it, survive a clean shutdown, and an account out of
// credit gets 402.
func TestMetering(t *testing.T) {
	tg, bus := accountsGateway(t, true)
	startNodes(t, tg, 1)
	frozen := make(chan events.Event, 8)
	sub, err := bus.Subscribe(t.Context(), "test-frozen", func(_ context.Context, ev events.Event) error {
		frozen <- ev
		return nil
	}, events.TypeAccountFrozen)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme","freezeBelow":1073741000}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":1073741824}`, http.StatusOK, nil)
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"poor","freezeBelow":1}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts/poor/topup", testAdmin, `{"bytes":10}`, http.StatusOK, nil)
	var created api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog","account":"acme"}`, http.StatusCreated, &created)
	if created.Account != "acme" {
		t.Fatalf("created %+v", created)
	}
	carBytes, root := siteCAR(t, sitetest.Files())
	// The site's token may not charge another account.
	if got := tg.apiJSON(t, "POST", "/v1/sites/blog/deploy?account=poor", created.Token, string(carBytes), http.StatusForbidden, nil); !strings.Contains(got, "may not charge account") {
		t.Fatalf("deploy for another account: %s", got)
	}
	if got := tg.apiJSON(t, "POST", "/v1/sites/blog/deploy?account=nobody", testAdmin, string(carBytes), http.StatusNotFound, nil); !strings.Contains(got, "unknown account") {
		t.Fatalf("deploy for unknown account: %s", got)
	}
	var rec api.DeployRecord
	tg.apiJSON(t, "POST", "/v1/sites/blog/deploy", created.Token, string(carBytes), http.StatusAccepted, &rec)
	if rec.Account != "acme" {
		t.Fatalf("deploy %+v", rec)
	}
	waitFor(t, "publish", func() bool {
		s, err := tg.Sites().Site(t.Context(), "blog")
		return err == nil && s.Root == root && s.Account == "acme"
	})

	var served int64
	fetch := func(path string, want int) []byte {
		resp, body := tg.get(t, tg.SiteURL("blog")+path)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
		if want == http.StatusOK {
			served += int64(len(body))
		}
		return body
	}
	account := func(name string) api.Account {
		var a api.Account
		tg.apiJSON(t, "GET", "/v1/accounts/"+name, testAdmin, "", http.StatusOK, &a)
		return a
	}
	fetch("", http.StatusOK)
	fetch("media/big.bin", http.StatusOK)
	fetch("style.css", http.StatusOK)
	// Not metered: the worker's own files and the session.
	tg.get(t, tg.SiteURL("blog")+strings.TrimPrefix(gateway.WorkerPath, "/"))
	tg.get(t, tg.SiteURL("blog")+strings.TrimPrefix(gateway.SessionPath, "/"))
	waitFor(t, "charges", func() bool {
		_ = tg.FlushCharges(t.Context())
		return account("acme").Charged == uint64(served)
	})
	a := account("acme")
	if !a.Frozen || a.Balance != 1<<30-served {
		t.Fatalf("after charges: %+v (served %d)", a, served)
	}
	select {
	case <-frozen:
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no account.frozen")
	}
	var d api.Dashboard
	tg.apiJSON(t, "GET", "/v1/accounts/acme/dashboard", testAdmin, "", http.StatusOK, &d)
	if d.Sites["blog"].Gateway != uint64(served) || d.Spend.Gateway != uint64(served) {
		t.Fatalf("dashboard %+v, served %d", d, served)
	}
	var st api.Statement
	tg.apiJSON(t, "GET", "/v1/accounts/acme/statement?type=charge", testAdmin, "", http.StatusOK, &st)
	var stated uint64
	for _, e := range st.Entries {
		stated += e.Sites["blog"]
	}
	if stated != uint64(served) {
		t.Fatalf("statement charges %d, served %d", stated, served)
	}

	// Frozen, but in credit: still served. These bytes are charged at Close.
	acmeServed := served
	fetch("about/", http.StatusOK)
	acmeServed, served = served, 0

	// The admin moves the site to "poor" (same root: no new version).
	tg.apiJSON(t, "POST", "/v1/sites/blog/deploy?account=poor", testAdmin, string(carBytes), http.StatusAccepted, nil)
	waitFor(t, "account change", func() bool {
		s, _ := tg.Sites().Site(t.Context(), "blog")
		return s.Account == "poor"
	})
	if st := tg.siteStatus(t, "blog", testAdmin); st.Site.Version != 1 || st.Site.Account != "poor" {
		t.Fatalf("site %+v", st.Site)
	}
	fetch("style.css", http.StatusOK)
	var refused []byte
	waitFor(t, "402", func() bool {
		resp, body := tg.get(t, tg.SiteURL("blog")+"style.css")
		if resp.StatusCode == http.StatusOK {
			served += int64(len(body))
		}
		refused = body
		return resp.StatusCode == http.StatusPaymentRequired
	})
	if !strings.Contains(string(refused), `account "poor" has run out of credit`) {
		t.Fatalf("402 body %s", refused)
	}
	fetch(strings.TrimPrefix(gateway.FallbackPrefix, "/")+"/"+root, http.StatusPaymentRequired)

	// A clean shutdown charges what is left.
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(t.Context(), ledger.Config{Bus: bus, Keys: payment.KeySet{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"acme": acmeServed, "poor": served} {
		a, err := l.Account(t.Context(), name)
		if err != nil || a.Charged != uint64(want) {
			t.Errorf("%s after shutdown: %+v %v, want %d charged", name, a, err, want)
		}
	}
}
