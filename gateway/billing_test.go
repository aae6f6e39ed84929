package gateway

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// chargeLog is a Charger that records what it is charged.
type chargeLog struct {
	mu  sync.Mutex
	got map[string]map[string]uint64 // account → site → bytes
}

func (c *chargeLog) ApplyCharge(_ context.Context, ch ledger.Charge) (ledger.ChargeResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]map[string]uint64{}
	}
	if c.got[ch.Account] == nil {
		c.got[ch.Account] = map[string]uint64{}
	}
	for site, n := range ch.Sites {
		c.got[ch.Account][site] += n
	}
	return ledger.ChargeResult{}, nil
}

func (c *chargeLog) charged(account, site string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[account][site]
}

// Every byte the gateway serves is billed to an account: a site that
// names none to the default account, a custom domain to the account of
// the site that published the root its DNSLink record names; a custom
// domain pointing at a root no site published is not served.
func TestEverySiteIsBilled(t *testing.T) {
	files := sitetest.Files()
	dnsSrv := startDNS(t, map[string][]string{})
	charges := &chargeLog{}
	nw := startNetworkWith(t, 1, files, func(c *Config) {
		c.DNSLink = NewDNSLink(DNSLinkConfig{Server: dnsSrv.addr, TTL: time.Minute})
		c.Charges = charges
	})
	shop := sitetest.Files()
	shop["index.html"] = []byte("<!doctype html><h1>the shop</h1>\n")
	shopRoot := sitetest.Import(t, nw.nodes, shop)
	nw.sites.SetAccount("shop", shopRoot, "acme")
	stray := sitetest.Files()
	stray["index.html"] = []byte("<!doctype html><h1>nobody's site</h1>\n")
	strayRoot := sitetest.Import(t, nw.nodes, stray)
	dnsSrv.set("_dnslink.www.shop.example.", "dnslink=/ipfs/"+shopRoot)
	dnsSrv.set("_dnslink.free.example.", "dnslink=/ipfs/"+strayRoot)

	// demo names no account: the default one pays.
	if resp, _ := nw.get(t, nw.SiteURL("demo")+"style.css"); resp.StatusCode != 200 {
		t.Fatalf("demo: %s", resp.Status)
	}
	// The shop's custom domain: acme pays, for the site shop.
	if resp, _ := nw.get(t, "http://www.shop.example/media/big.bin"); resp.StatusCode != 200 {
		t.Fatalf("custom domain: %s", resp.Status)
	}
	// A domain pointing at content no site here published.
	if resp, body := nw.get(t, "http://free.example/"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("custom domain of nobody's root: %s %q, want 404", resp.Status, body)
	}
	// A response is metered once its handler returns, which may be just
	// after the client read its last byte: flush until both are in.
	testutil.Eventually(t, 10*time.Second, "both responses metered", func() bool {
		if err := nw.FlushCharges(t.Context()); err != nil {
			t.Fatal(err)
		}
		return charges.charged("default", "demo") > 0 && charges.charged("acme", "shop") > 0
	})
	if got := charges.charged("default", "demo"); got != uint64(len(files["style.css"])) {
		t.Fatalf("demo charged %d bytes to the default account, want %d (all: %v)", got, len(files["style.css"]), charges.got)
	}
	if got := charges.charged("acme", "shop"); got != uint64(len(shop["media/big.bin"])) {
		t.Fatalf("the custom domain charged %d bytes to acme for shop, want %d (all: %v)", got, len(shop["media/big.bin"]), charges.got)
	}
}
