package control

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// consoleClient sends API requests with a console session's cookie and,
// unless csrf is "", its CSRF header.
type consoleClient struct {
	tg     *testGateway
	cookie string
	csrf   string
}

// signIn signs in at tg with body (an api.SignIn) and wants status; on
// 200 it returns the session's client and answer.
func signIn(t *testing.T, tg *testGateway, body string, want int) (consoleClient, api.Whoami) {
	t.Helper()
	resp, got := tg.do(t, http.MethodPost, tg.URL()+authPath, strings.NewReader(body), "Content-Type", "application/json")
	if resp.StatusCode != want {
		t.Fatalf("sign in %s: %d %s, want %d", body, resp.StatusCode, got, want)
	}
	var who api.Whoami
	if want != http.StatusOK {
		return consoleClient{}, who
	}
	if err := json.Unmarshal(got, &who); err != nil {
		t.Fatal(err)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/v1/" || ck.Secure || ck.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", ck)
	}
	if who.CSRF == "" || who.Expires.IsZero() {
		t.Fatalf("sign-in answer %+v: no CSRF token or expiry", who)
	}
	return consoleClient{tg: tg, cookie: ck.Value, csrf: who.CSRF}, who
}

// call sends method path with the session and wants status; it returns
// the body.
func (cc consoleClient) call(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	hdr := []string{"Cookie", SessionCookie + "=" + cc.cookie}
	if cc.csrf != "" {
		hdr = append(hdr, CSRFHeader, cc.csrf)
	}
	if body != "" {
		hdr = append(hdr, "Content-Type", "application/json")
	}
	resp, got := cc.tg.do(t, method, cc.tg.URL()+path, strings.NewReader(body), hdr...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s with a session: %d %s, want %d", method, path, resp.StatusCode, got, want)
	}
	if want >= 400 {
		var e api.Error
		if err := json.Unmarshal(got, &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: error body %q is not a JSON error", method, path, got)
		}
	}
	return got
}

// TestConsoleSessions: a console session is made by signing in with a
// credential the gateway issued, is accepted by every gateway on the bus
// in place of that credential, and is refused when forged, tampered with,
// expired or signed out; an unsafe request without the session's CSRF
// token is refused and changes nothing; each role reaches only what it
// owns: a site's owner neither another site nor another account, an
// operator not another operator's node.
func TestConsoleSessions(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	server, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "nats", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	connect := func(name string) *events.Bus {
		b, err := events.Open(t.Context(), events.Config{URL: server.ClientURL(), Name: name, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	cfg := Config{AdminToken: testAdmin, Faucet: true, SessionTTL: time.Hour, Now: now}
	gwA, _ := startStack(t, connect("gw-a"), cfg, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	gwB, _ := startStack(t, connect("gw-b"), cfg, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})

	for _, a := range []string{"acme", "other"} {
		gwA.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"`+a+`"}`, http.StatusCreated, nil)
	}
	var blog, shop api.SiteCreated
	gwA.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog","account":"acme"}`, http.StatusCreated, &blog)
	gwA.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"shop","account":"other"}`, http.StatusCreated, &shop)
	rootOld, rootNew := testCID(t, "v1"), testCID(t, "v2")
	for _, root := range []string{rootOld, rootNew} {
		if _, err := gwA.ctl.Sites().PublishFor(t.Context(), "blog", root, "acme", 1); err != nil {
			t.Fatal(err)
		}
	}
	current := func() string {
		var st api.SiteStatus
		gwA.apiJSON(t, "GET", "/v1/sites/blog", testAdmin, "", http.StatusOK, &st)
		return st.Site.Root
	}

	t.Run("sign-in refusals", func(t *testing.T) {
		signIn(t, gwA.testGateway, `{"credential":"vat_not-the-admin"}`, http.StatusForbidden)
		signIn(t, gwA.testGateway, `{"credential":"`+blog.Token+`"}`, http.StatusBadRequest) // no site
		signIn(t, gwA.testGateway, `{"credential":"`+blog.Token+`","site":"shop"}`, http.StatusForbidden)
		signIn(t, gwA.testGateway, `{"credential":""}`, http.StatusUnauthorized)
		signIn(t, gwA.testGateway, `{"credential":"hello"}`, http.StatusForbidden)
		// A form another origin could post is not a sign-in.
		resp, _ := gwA.do(t, http.MethodPost, gwA.URL()+authPath, strings.NewReader("credential="+testAdmin), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != http.StatusBadRequest || len(resp.Cookies()) != 0 {
			t.Fatalf("form sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
	})

	owner, who := signIn(t, gwA.testGateway, `{"credential":"`+blog.Token+`","site":"blog"}`, http.StatusOK)
	if who.Role != api.RoleSite || who.Site != "blog" || who.Account != "acme" {
		t.Fatalf("site owner signed in as %+v", who)
	}

	t.Run("forged and tampered cookies", func(t *testing.T) {
		forged := consoleClient{tg: gwA.testGateway, cookie: sessionPrefix + strings.Repeat("A", 43)}
		forged.call(t, "GET", "/v1/sites/blog", "", http.StatusUnauthorized)
		forged.call(t, "GET", whoamiPath, "", http.StatusUnauthorized)
		b := []byte(owner.cookie)
		b[len(b)-1] ^= 1
		tampered := owner
		tampered.cookie = string(b)
		tampered.call(t, "GET", "/v1/sites/blog", "", http.StatusUnauthorized)
		tampered.call(t, "POST", "/v1/sites/blog/rollback", "", http.StatusUnauthorized)
		junk := consoleClient{tg: gwA.testGateway, cookie: "not-a-session"}
		junk.call(t, "GET", "/v1/accounts/acme", "", http.StatusUnauthorized)
	})

	t.Run("site owner reaches its own site and account only", func(t *testing.T) {
		var st api.SiteStatus
		if err := json.Unmarshal(owner.call(t, "GET", "/v1/sites/blog", "", http.StatusOK), &st); err != nil || st.Site.Root != rootNew || st.URL != gwA.SiteURL("blog") {
			t.Fatalf("own site: %+v %v", st, err)
		}
		owner.call(t, "GET", "/v1/accounts/acme", "", http.StatusOK)
		owner.call(t, "GET", "/v1/accounts/acme/statement", "", http.StatusOK)
		owner.call(t, "GET", "/v1/accounts/acme/dashboard", "", http.StatusOK)
		for _, p := range []string{"/v1/sites/shop", "/v1/sites/shop/domains", "/v1/sites/shop/webhooks",
			"/v1/accounts/other", "/v1/accounts/other/statement", "/v1/accounts/other/dashboard",
			"/v1/sites", "/v1/accounts", "/v1/nodes", "/v1/events", "/v1/operators", "/v1/placements", "/v1/events/history"} {
			owner.call(t, "GET", p, "", http.StatusForbidden)
		}
		owner.call(t, "POST", "/v1/sites/shop/rollback", "", http.StatusForbidden)
		owner.call(t, "POST", "/v1/accounts/acme/topup", `{"bytes":1000}`, http.StatusForbidden)
		// A deploy token outside a session reads its account with ?site=.
		gwA.apiJSON(t, "GET", "/v1/accounts/acme?site=blog", blog.Token, "", http.StatusOK, nil)
		gwA.apiJSON(t, "GET", "/v1/accounts/other?site=blog", blog.Token, "", http.StatusForbidden, nil)
		gwA.apiJSON(t, "GET", "/v1/accounts/acme?site=shop", blog.Token, "", http.StatusForbidden, nil)
		gwA.apiJSON(t, "GET", "/v1/accounts/acme", blog.Token, "", http.StatusForbidden, nil)
	})

	t.Run("CSRF", func(t *testing.T) {
		noCSRF := owner
		noCSRF.csrf = ""
		noCSRF.call(t, "POST", "/v1/sites/blog/rollback", "", http.StatusForbidden)
		other, _ := signIn(t, gwA.testGateway, `{"credential":"`+blog.Token+`","site":"blog"}`, http.StatusOK)
		wrong := owner
		wrong.csrf = other.csrf // another session's token
		wrong.call(t, "POST", "/v1/sites/blog/rollback", `{"root":"`+rootOld+`"}`, http.StatusForbidden)
		wrong.call(t, "DELETE", authPath, "", http.StatusForbidden)
		if got := current(); got != rootNew {
			t.Fatalf("a refused rollback moved the site to %s", got)
		}
		// GETs need no token: EventSource cannot send one.
		noCSRF.call(t, "GET", "/v1/sites/blog", "", http.StatusOK)
		// With the token, on the other gateway: the rollback happens.
		onB := owner
		onB.tg = gwB.testGateway
		onB.call(t, "POST", "/v1/sites/blog/rollback", `{"root":"`+rootOld+`"}`, http.StatusOK)
		waitFor(t, "the rollback seen by gateway A", func() bool { return current() == rootOld })
	})

	t.Run("operators", func(t *testing.T) {
		joinNode(t, gwA, 61, sitetest.RecordAt(t, 61, "127.0.0.1"))
		id := noderecord.NodeIDFromKey(sitetest.Key(61).Public().(ed25519.PublicKey))
		alice, err := gwA.coord.CreateOperator(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		op, who := signIn(t, gwA.testGateway, `{"credential":"`+gwA.opToken+`"}`, http.StatusOK)
		waitFor(t, "the operator's node listed", func() bool {
			// whoami, not a sign-in per try: sign-ins are limited.
			who = api.Whoami{}
			_ = json.Unmarshal(op.call(t, "GET", whoamiPath, "", http.StatusOK), &who)
			return len(who.Nodes) == 1 && who.Nodes[0] == id
		})
		if who.Role != api.RoleOperator {
			t.Fatalf("operator signed in as %+v", who)
		}
		var n api.NodeInfo
		if err := json.Unmarshal(op.call(t, "GET", "/v1/nodes/"+id, "", http.StatusOK), &n); err != nil || n.ID != id {
			t.Fatalf("own node: %+v %v", n, err)
		}
		op.call(t, "GET", "/v1/nodes/"+id+"/earnings", "", http.StatusOK)

		thief, who := signIn(t, gwA.testGateway, `{"credential":"`+alice+`"}`, http.StatusOK)
		if who.Role != api.RoleOperator || who.Operator != "alice" || len(who.Nodes) != 0 {
			t.Fatalf("alice signed in as %+v", who)
		}
		thief.call(t, "GET", "/v1/nodes/"+id, "", http.StatusForbidden)
		thief.call(t, "GET", "/v1/nodes/"+id+"/earnings", "", http.StatusForbidden)
		var list api.NodeList
		if err := json.Unmarshal(thief.call(t, "GET", "/v1/nodes", "", http.StatusOK), &list); err != nil || len(list.Nodes) != 0 {
			t.Fatalf("alice lists %+v (%v)", list, err)
		}
		for _, p := range []string{"/v1/sites/blog", "/v1/accounts/acme", "/v1/events", "/v1/operators", "/v1/placements", "/v1/accounts/acme/history"} {
			thief.call(t, "GET", p, "", http.StatusForbidden)
		}
		// A revoked operator's session ends with its credential.
		gwA.apiJSON(t, "DELETE", "/v1/operators/alice", testAdmin, "", http.StatusNoContent, nil)
		waitFor(t, "alice's session refused", func() bool {
			resp, _ := gwA.do(t, "GET", gwA.URL()+"/v1/nodes", nil, "Cookie", SessionCookie+"="+thief.cookie)
			return resp.StatusCode == http.StatusForbidden
		})
	})

	t.Run("admin", func(t *testing.T) {
		admin, who := signIn(t, gwA.testGateway, `{"credential":"`+testAdmin+`"}`, http.StatusOK)
		if who.Role != api.RoleAdmin {
			t.Fatalf("admin signed in as %+v", who)
		}
		admin.call(t, "GET", "/v1/sites", "", http.StatusOK)
		admin.call(t, "GET", "/v1/placements", "", http.StatusOK)
		admin.call(t, "GET", "/v1/accounts/other/statement", "", http.StatusOK)
		admin.call(t, "POST", "/v1/accounts/other/topup", `{"bytes":1000}`, http.StatusOK)
	})

	t.Run("sign-out ends the session on every gateway", func(t *testing.T) {
		s, _ := signIn(t, gwB.testGateway, `{"credential":"`+blog.Token+`","site":"blog"}`, http.StatusOK)
		onA := s
		onA.tg = gwA.testGateway
		onA.call(t, "GET", whoamiPath, "", http.StatusOK)
		resp, body := gwB.do(t, http.MethodDelete, gwB.URL()+authPath, nil, "Cookie", SessionCookie+"="+s.cookie, CSRFHeader, s.csrf)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("sign out: %d %s", resp.StatusCode, body)
		}
		if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
			t.Fatalf("sign out clears no cookie: %v", cs)
		}
		onA.call(t, "GET", "/v1/sites/blog", "", http.StatusUnauthorized)
	})

	t.Run("signing in again ends the browser's previous session", func(t *testing.T) {
		first, _ := signIn(t, gwA.testGateway, `{"credential":"`+blog.Token+`","site":"blog"}`, http.StatusOK)
		resp, body := gwA.do(t, http.MethodPost, gwA.URL()+authPath, strings.NewReader(`{"credential":"`+testAdmin+`"}`),
			"Content-Type", "application/json", "Cookie", SessionCookie+"="+first.cookie)
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 || resp.Cookies()[0].Value == first.cookie {
			t.Fatalf("second sign-in: %d %s %v", resp.StatusCode, body, resp.Cookies())
		}
		first.call(t, "GET", whoamiPath, "", http.StatusUnauthorized)
		second := consoleClient{tg: gwA.testGateway, cookie: resp.Cookies()[0].Value}
		second.call(t, "GET", "/v1/sites", "", http.StatusOK)
	})

	t.Run("expired session", func(t *testing.T) {
		owner.call(t, "GET", whoamiPath, "", http.StatusOK)
		skew.Store(int64(time.Hour + time.Minute))
		defer skew.Store(0)
		body := owner.call(t, "GET", "/v1/sites/blog", "", http.StatusUnauthorized)
		if !bytes.Contains(body, []byte("expired")) {
			t.Fatalf("expired session: %s", body)
		}
		skew.Store(0)
		owner.call(t, "GET", "/v1/sites/blog", "", http.StatusUnauthorized) // and it stays gone
	})
}

// TestSignInBounded: every sign-in stores a session on the bus for up to
// a day, so one credential signing in in a loop must not fill the bus:
// past a burst its sign-ins are refused (429, Retry-After) and store
// nothing, while another credential still signs in.
func TestSignInBounded(t *testing.T) {
	now := time.Now() // a still clock: no token refills during the test
	bus := openBus(t, "gw-signin-bounded")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, Now: func() time.Time { return now }},
		gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	var blog api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog"}`, http.StatusCreated, &blog)
	body := `{"credential":"` + blog.Token + `","site":"blog"}`
	stored := func() int {
		keys, err := tg.ctl.sessions.ListKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n
	}
	const tries = 200
	for i := range tries {
		resp, got := tg.do(t, http.MethodPost, tg.URL()+authPath, strings.NewReader(body), "Content-Type", "application/json")
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 {
				t.Fatalf("refused sign-in: Retry-After %q, cookies %v", resp.Header.Get("Retry-After"), resp.Cookies())
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in %d: %d %s", i, resp.StatusCode, got)
		}
	}
	if n := stored(); n >= tries {
		t.Fatalf("%d sign-ins with one credential stored %d sessions", tries, n)
	}
	before := stored()
	signIn(t, tg.testGateway, `{"credential":"`+testAdmin+`"}`, http.StatusOK)
	if stored() != before+1 {
		t.Fatal("another credential's sign-in stored no session")
	}
}

// TestSessionCookieTossed: a site served under the gateway's domain can
// set a cookie of the session's name for the parent domain (cookie
// tossing), which the browser then sends before the console's own. A
// junk one must not lock the signed-in browser out of the console: the
// session of the cookie that names one is used.
func TestSessionCookieTossed(t *testing.T) {
	bus := openBus(t, "gw-cookie-tossed")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin}, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	admin, _ := signIn(t, tg.testGateway, `{"credential":"`+testAdmin+`"}`, http.StatusOK)
	for _, junk := range []string{"junk", sessionPrefix + strings.Repeat("A", 43)} {
		tossed := admin
		tossed.cookie = junk + "; " + SessionCookie + "=" + admin.cookie
		tossed.call(t, "GET", whoamiPath, "", http.StatusOK)
		tossed.call(t, "GET", "/v1/sites", "", http.StatusOK)
		tossed.call(t, "POST", "/v1/accounts", `{"name":"acme-`+strings.ToLower(junk[:2])+`"}`, http.StatusCreated)
	}
	// Only junk: still refused.
	junk := admin
	junk.cookie = "junk; " + SessionCookie + "=" + sessionPrefix + strings.Repeat("B", 43)
	junk.call(t, "GET", "/v1/sites", "", http.StatusUnauthorized)
}

// TestSessionCookieHostOnly: under HTTPS the session cookie is
// "__Host-verity_session" (Secure, Path=/, no Domain), which browsers
// take only from the gateway's own host: a site under the gateway's
// domain that tosses its owner's live session as a parent-domain
// "verity_session" cookie does not swap it in for the signed-in admin's.
func TestSessionCookieHostOnly(t *testing.T) {
	bus := openBus(t, "gw-cookie-host")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin}, gateway.Config{MeterInterval: time.Hour, CreditLimit: -1})
	tg.ctl.cfg.PublicURL = "https://verity.example" // behind a TLS proxy; no node fetches here
	var evil api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"evil"}`, http.StatusCreated, &evil)
	signInCookie := func(body string) (*http.Cookie, api.Whoami) {
		t.Helper()
		resp, got := tg.do(t, http.MethodPost, tg.URL()+authPath, strings.NewReader(body), "Content-Type", "application/json")
		var who api.Whoami
		if resp.StatusCode != http.StatusOK || json.Unmarshal(got, &who) != nil || len(resp.Cookies()) != 1 {
			t.Fatalf("sign in: %d %s %v", resp.StatusCode, got, resp.Cookies())
		}
		return resp.Cookies()[0], who
	}
	attacker, _ := signInCookie(`{"credential":"` + evil.Token + `","site":"evil"}`)
	admin, adminWho := signInCookie(`{"credential":"` + testAdmin + `"}`)
	if admin.Name != "__Host-"+SessionCookie || admin.Path != "/" || !admin.Secure || !admin.HttpOnly || admin.Domain != "" {
		t.Fatalf("session cookie under HTTPS: %+v", admin)
	}
	// The evil site's page tossed the attacker's session for the parent
	// domain, with a longer path, so the browser sends it first.
	tossed := consoleClient{tg: tg.testGateway, cookie: attacker.Value + "; " + admin.Name + "=" + admin.Value, csrf: adminWho.CSRF}
	var who api.Whoami
	if err := json.Unmarshal(tossed.call(t, "GET", whoamiPath, "", http.StatusOK), &who); err != nil || who.Role != api.RoleAdmin {
		t.Fatalf("with a tossed cookie the browser is %+v (%v), want the admin", who, err)
	}
	tossed.call(t, "GET", "/v1/sites", "", http.StatusOK)
}
