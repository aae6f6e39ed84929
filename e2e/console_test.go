package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
)

// TestConsoleRoles walks the web console in Chromium as each role: a
// site's owner sees its site, deploy history and account with the numbers
// the API answers, rolls back from the console (the old root is published
// and the site's origin serves it), and is refused, with an error on the
// page, another site's name in the URL and a request whose CSRF token is
// wrong; an operator sees its nodes as the API lists them; the admin sees
// every node, the placements and a live, filtered event feed; a forged
// session cookie is refused with an error on the sign-in page.
//
// With VERITY_CONSOLE_SCREENSHOTS=DIR it saves a PNG of each page there
// (docs/console/ holds the ones docs/console.md shows).
func TestConsoleRoles(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := e.ctx(3 * time.Minute)
	c := &consoleWalk{e: e, gw: strings.TrimRight(e.net.Gateway().URL(), "/"), shots: os.Getenv("VERITY_CONSOLE_SCREENSHOTS"),
		hc: browser.NewHTTPClient(30 * time.Second)}
	defer c.hc.CloseIdleConnections()
	c.admin = readToken(t, e.net.Control().AdminTokenPath())
	operator := readToken(t, e.net.OperatorTokenPath())
	siteToken, err := e.net.Control().CreateSite(ctx, devnet.SiteName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(e.b.Context(), chromedp.EmulateViewport(1100, 860)); err != nil {
		t.Fatal(err)
	}

	// A second version of the demo, published over the first.
	oldRoot := e.net.Root()
	const marker = "console-test-version-2"
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(demoDir)); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), append(index, []byte("<!-- "+marker+" -->\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	newRoot, err := importer.WriteCAR(ctx, dir, &car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.net.Control().DeployFor(ctx, devnet.SiteName, "", &car); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, "the second version published and served", func() bool {
		return c.siteRoot() == newRoot.String() && strings.Contains(c.home(), marker)
	})

	// A visit whose first page the gateway serves (and charges) and
	// whose assets the nodes do, then the same assets again, from the
	// worker's cache: the site's requests counted in its history, the
	// gateway's by the gateway, the others as the worker reported them.
	e.controlled()
	var fromNodes, fromCache int64
	visited := assets(e.files)[:min(4, len(assets(e.files)))]
	for round := range 2 {
		for _, f := range visited {
			switch tr, _ := e.fetchFileCached(f).Timing("verity"); tr {
			case "webtransport", "webrtc":
				fromNodes++
			case "cache":
				fromCache++
			}
		}
		if round == 0 {
			e.cacheStats() // the files are written to the cache
		}
	}
	if fromNodes == 0 || fromCache == 0 {
		t.Fatalf("the visit got %d files from nodes and %d from the cache, want some of each", fromNodes, fromCache)
	}
	testutil.Eventually(t, 60*time.Second, "the visit's requests in the site's history", func() bool {
		var h api.Series
		c.apiGet("/v1/accounts/default/history?since=1h&step=5m&site="+devnet.SiteName, &h)
		return sum(h.Values["gateway"]) > 0 && sum(h.Values["requests_gateway"]) > 0 &&
			sum(h.Values["requests_nodes"]) >= fromNodes && sum(h.Values["requests_cache"]) >= fromCache
	})

	// A preview deploy, which the site's page links to.
	if err := os.WriteFile(filepath.Join(dir, "preview.txt"), []byte("a preview\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	car.Reset()
	if _, err := importer.WriteCAR(ctx, dir, &car, importer.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.net.Control().DeployPreview(ctx, devnet.SiteName, "", 0, &car); err != nil {
		t.Fatal(err)
	}

	// Sign-in page, then the site's owner.
	c.open("#/signin")
	c.waitFor("the sign-in form", `document.getElementById('signin-submit')`)
	c.shot("signin")
	c.signIn(siteToken, devnet.SiteName)
	c.waitFor("the site page", `document.getElementById('site-root') && document.getElementById('acct-balance') && document.querySelector('#chart-traffic')`)
	c.shot("site")
	if c.shots != "" {
		c.eval(`document.getElementById('chart-traffic').closest('.grid').scrollIntoView(); 'ok'`)
		c.shot("site-charts")
		c.eval(`window.scrollTo(0, 0); 'ok'`)
	}
	var st api.SiteStatus
	c.apiGet("/v1/sites/"+devnet.SiteName, &st)
	if got := c.text("site-root"); got != st.Site.Root || got != newRoot.String() {
		t.Fatalf("page shows root %q, API %q", got, st.Site.Root)
	}
	if got := c.attr("#site-version", "data-value"); got != fmt.Sprint(st.Site.Version) {
		t.Fatalf("page shows version %s, API %d", got, st.Site.Version)
	}
	rows := c.eval(`[...document.querySelectorAll('#history tbody tr')].map(r => r.dataset.root).join(',')`)
	var roots []string
	for _, v := range st.Site.History {
		roots = append(roots, v.Root)
	}
	if rows != strings.Join(roots, ",") {
		t.Fatalf("page's history %s, API's %v", rows, roots)
	}
	if len(st.Previews) != 1 || c.attr("#previews .preview-link", "href") != st.Previews[0].URL {
		t.Fatalf("page links the preview at %q, API %+v", c.attr("#previews .preview-link", "href"), st.Previews)
	}
	account := st.Site.Account
	testutil.Eventually(t, 30*time.Second, "the account's numbers on the page equal the API's", func() bool {
		var a api.Account
		var traffic api.Series
		c.apiGet("/v1/accounts/"+account, &a)
		c.apiGet("/v1/accounts/"+account+"/history?since=24h&step=1h&site="+devnet.SiteName, &traffic)
		want := fmt.Sprintf(`{"gateway":%d,"nodes":%d} {"reported":%d} {"requests_cache":%d,"requests_fallback":%d,"requests_gateway":%d,"requests_nodes":%d} %d %d`,
			sum(traffic.Values["gateway"]), sum(traffic.Values["nodes"]), sum(traffic.Values["reported"]),
			sum(traffic.Values["requests_cache"]), sum(traffic.Values["requests_fallback"]), sum(traffic.Values["requests_gateway"]), sum(traffic.Values["requests_nodes"]),
			sum(traffic.Values["requests_nodes"]), sum(traffic.Values["requests_cache"]))
		page := c.attr("#acct-balance", "data-value") + " " + c.attr("#acct-freeze", "data-value") + " " +
			c.normJSON(c.attr("#chart-traffic", "data-sums")) + " " + c.normJSON(c.attr("#chart-reported", "data-sums")) + " " +
			c.normJSON(c.attr("#chart-requests", "data-sums")) + " " + c.attr("#req-nodes", "data-value") + " " + c.attr("#req-cache", "data-value")
		if page == fmt.Sprintf("%d %d %s", a.Balance, a.FreezeBelow, want) {
			return true
		}
		c.open("#/site/" + devnet.SiteName) // traffic was charged meanwhile: look again
		c.waitFor("the site page", `document.getElementById('acct-balance') && document.querySelector('#chart-traffic')`)
		return false
	})

	// Another site's name in the URL: refused, shown.
	c.open("#/site/not-mine")
	c.waitFor("the refusal shown", `!document.getElementById('error').hidden && /403/.test(document.getElementById('error').textContent)`)
	c.shot("refused")

	// No such page: said, and the owner's own page shown.
	c.open("#/nowhere")
	c.waitFor("the bad page said", `/No such page/.test(document.getElementById('error').textContent) && document.getElementById('site-root')`)

	// A rollback without the CSRF token, or with a wrong one: refused,
	// shown, nothing moves.
	for _, csrf := range []string{"", "forged"} {
		c.open("#/site/" + devnet.SiteName)
		c.reload()
		c.waitFor("the rollback button", `document.querySelector('button.rollback')`)
		c.eval(`window.verityConsole.csrf = '` + csrf + `'; document.querySelector('button.rollback[data-root="` + oldRoot + `"]').click(); document.getElementById('confirm-yes').click(); 'ok'`)
		c.waitFor("the CSRF refusal shown", `/403.*CSRF/.test(document.getElementById('error').textContent)`)
		if r := c.siteRoot(); r != newRoot.String() {
			t.Fatalf("a rollback with CSRF token %q moved the site to %s", csrf, r)
		}
	}

	// The rollback, confirmed: the old root is published and served.
	c.reload()
	c.waitFor("the rollback button", `document.querySelector('button.rollback[data-root="`+oldRoot+`"]')`)
	c.eval(`document.querySelector('button.rollback[data-root="` + oldRoot + `"]').click(); 'ok'`)
	c.waitFor("the confirmation", `document.getElementById('confirm-yes')`)
	c.shot("rollback")
	c.eval(`document.getElementById('confirm-yes').click(); 'ok'`)
	c.waitFor("the rollback done", `/Rolled back/.test(document.getElementById('notice').textContent) && document.getElementById('site-root').textContent === '`+oldRoot+`'`)
	if r := c.siteRoot(); r != oldRoot {
		t.Fatalf("after the rollback the API names %s, want %s", r, oldRoot)
	}
	testutil.Eventually(t, 30*time.Second, "the site's origin serving the old version", func() bool {
		h := c.home()
		return h != "" && !strings.Contains(h, marker)
	})
	c.eval(`document.getElementById('signout').click(); 'ok'`)
	c.waitFor("the sign-in form after signing out", `document.getElementById('signin-submit')`)

	// The operator.
	c.signIn(operator, "")
	c.waitFor("the operator's nodes", `document.querySelectorAll('#nodes tbody tr').length === 2 && document.querySelector('[id^=chart-earn-]')`)
	c.shot("operator")
	var nodes api.NodeList
	c.apiGet("/v1/nodes", &nodes)
	var want []string
	for _, n := range nodes.Nodes {
		if n.Operator == devnet.DevnetOperator {
			want = append(want, n.ID+"="+fmt.Sprint(n.Holdings))
		}
	}
	got := strings.Split(c.eval(`[...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.node + '=' + r.querySelector('.holdings').dataset.value).join(',')`), ",")
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("operator page lists %v, API %v", got, want)
	}
	// Settled (the ledger) and pending (the node's claim) per node, as
	// the API answers them; these nodes report their pending receipts.
	testutil.Eventually(t, 30*time.Second, "the operator page's settled and pending equal the API's", func() bool {
		var nl api.NodeList
		c.apiGet("/v1/nodes", &nl)
		var want, got []string
		for _, n := range nl.Nodes {
			if n.Operator != devnet.DevnetOperator {
				continue
			}
			if n.ClaimedUnsettled == nil {
				t.Fatalf("node %s of this version reports no pending receipts", n.ID)
			}
			var earn api.Earnings
			c.apiGet("/v1/nodes/"+n.ID+"/earnings", &earn)
			tag := n.ID[len(n.ID)-8:]
			want = append(want, fmt.Sprintf("%s %d %d", n.ID, earn.Earned, n.ClaimedUnsettled.Bytes))
			got = append(got, n.ID+" "+c.attr("#earned-"+tag, "data-value")+" "+c.attr("#pending-"+tag, "data-value"))
		}
		if slices.Equal(got, want) {
			return true
		}
		c.reload()
		c.waitFor("the operator's nodes", `document.querySelectorAll('#nodes tbody tr').length === 2 && document.querySelector('[id^=chart-earn-]')`)
		return false
	})
	c.eval(`document.getElementById('signout').click(); 'ok'`)
	c.waitFor("the sign-in form after signing out", `document.getElementById('signin-submit')`)

	// The admin: nodes, placements, the live feed and its filter.
	c.signIn(c.admin, "")
	c.waitFor("the network page", `document.querySelectorAll('#admin-nodes tbody tr').length === 2 && document.querySelectorAll('#feed li').length > 0`)
	var places api.PlacementList
	c.apiGet("/v1/placements", &places)
	under := 0
	for _, p := range places.Placements {
		if p.UnderReplicated {
			under++
		}
	}
	if got := c.attr("#under-replicated", "data-value"); got != fmt.Sprint(under) {
		t.Fatalf("page shows %s under-replicated roots, API %d", got, under)
	}
	if got := c.eval(`String(document.querySelectorAll('#placements tbody tr').length)`); got != fmt.Sprint(len(places.Placements)) {
		t.Fatalf("page lists %s placements, API %d", got, len(places.Placements))
	}
	var fails api.Series
	c.apiGet("/v1/events/history?since=24h&step=24h&types=node.reported,node.audit_failed&group=node", &fails)
	for _, n := range nodes.Nodes {
		want := sum(fails.Values["node.reported:"+n.ID]) + sum(fails.Values["node.audit_failed:"+n.ID])
		if got := c.attr(`#admin-nodes tr[data-node="`+n.ID+`"] .failures`, "data-value"); got != fmt.Sprint(want) {
			t.Fatalf("page shows %s failures of node %s, API %d", got, n.ID, want)
		}
	}
	c.shot("admin")
	c.eval(`document.getElementById('feed-types').value = 'site.rolled_back'; document.getElementById('feed-apply').click(); 'ok'`)
	c.waitFor("the filtered feed", `(() => { const li = [...document.querySelectorAll('#feed li')]; return li.length > 0 && li.every(l => l.dataset.type === 'site.rolled_back'); })()`)
	c.eval(`document.getElementById('feed-types').value = 'no.such-type'; document.getElementById('feed-apply').click(); 'ok'`)
	c.waitFor("a bad filter shown", `/Unknown event type/.test(document.getElementById('error').textContent)`)

	// A forged session cookie: refused, and the page says so.
	if _, err := chromedp.Call(e.b.Context(), network.SetCookie, network.SetCookieParams{Name: "verity_session", Value: "vcs_" + strings.Repeat("x", 43), URL: c.gw + "/v1/", Path: "/v1/"}); err != nil {
		t.Fatal(err)
	}
	c.open("#/admin")
	c.reload()
	c.waitFor("the forged cookie refused", `document.getElementById('signin-submit') && /names no session/.test(document.getElementById('error').textContent)`)
}

// consoleWalk drives the console in the env's browser.
type consoleWalk struct {
	e     *env
	gw    string // the gateway's own origin
	admin string
	shots string // where screenshots go, or ""
	// hc is the walk's one HTTP client: a client per request would leave
	// its idle connection open, and a loop of them would reach the
	// gateway's cap on one client's connections, which closes the next.
	hc *http.Client
}

func (c *consoleWalk) open(hash string) {
	c.e.t.Helper()
	if err := c.e.b.Navigate(c.e.ctx(30*time.Second), c.gw+gateway.ConsolePath+"/"+hash); err != nil {
		c.e.t.Fatal(err)
	}
}

func (c *consoleWalk) reload() {
	c.e.t.Helper()
	if err := c.e.b.Reload(c.e.ctx(30 * time.Second)); err != nil {
		c.e.t.Fatal(err)
	}
}

func (c *consoleWalk) waitFor(what, cond string) {
	c.e.t.Helper()
	if err := c.e.b.WaitFor(c.e.ctx(30*time.Second), what, cond); err != nil {
		errText := c.eval(`document.getElementById('error') ? document.getElementById('error').textContent : ''`)
		c.e.t.Fatalf("%v (error on the page: %q)", err, errText)
	}
}

func (c *consoleWalk) eval(expr string) string {
	c.e.t.Helper()
	v, err := browser.Eval[string](c.e.ctx(30*time.Second), c.e.b, expr)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return v
}

func (c *consoleWalk) text(id string) string {
	c.e.t.Helper()
	return c.eval(`document.getElementById('` + id + `').textContent`)
}

func (c *consoleWalk) attr(sel, name string) string {
	c.e.t.Helper()
	return c.eval(`document.querySelector('` + sel + `').getAttribute('` + name + `')`)
}

// signIn fills the sign-in form and submits it.
func (c *consoleWalk) signIn(credential, site string) {
	c.e.t.Helper()
	if _, err := browser.Call[bool](c.e.ctx(30*time.Second), c.e.b, `(cred, site) => {
		document.getElementById('credential').value = cred;
		document.getElementById('site').value = site;
		document.getElementById('signin-submit').click();
		return true;
	}`, credential, site); err != nil {
		c.e.t.Fatal(err)
	}
}

// shot saves the page as c.shots/name.png.
func (c *consoleWalk) shot(name string) {
	c.e.t.Helper()
	if c.shots == "" {
		return
	}
	tctx, cancel := context.WithTimeout(c.e.b.Context(), testutil.Scale(30*time.Second))
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		c.e.t.Fatal(err)
	}
	png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		c.e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.shots, name+".png"), png, 0o644); err != nil {
		c.e.t.Fatal(err)
	}
}

// apiGet reads path from the API with the admin token into out.
func (c *consoleWalk) apiGet(path string, out any) {
	c.e.t.Helper()
	req, _ := http.NewRequestWithContext(c.e.ctx(30*time.Second), http.MethodGet, c.gw+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		c.e.t.Fatalf("GET %s: %v", path, err)
	}
}

// siteRoot is the demo site's current root, as the API answers it.
func (c *consoleWalk) siteRoot() string {
	c.e.t.Helper()
	var st api.SiteStatus
	c.apiGet("/v1/sites/"+devnet.SiteName, &st)
	if st.Site == nil {
		return ""
	}
	return st.Site.Root
}

// home is the site's front page as its origin serves it now, or "".
func (c *consoleWalk) home() string {
	resp, err := c.hc.Get(c.e.site + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// normJSON re-encodes a JSON object with sorted keys.
func (c *consoleWalk) normJSON(s string) string {
	var m map[string]int64
	if json.Unmarshal([]byte(s), &m) != nil {
		return s
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func sum(col []int64) (n int64) {
	for _, v := range col {
		n += v
	}
	return n
}
