package control

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// zone is a DNS server for the tests: TXT and CNAME records set as they go.
type zone struct {
	addr  string
	mu    sync.Mutex
	txt   map[string][]string
	cname map[string]string
}

func startZone(t *testing.T) *zone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{addr: pc.LocalAddr().String(), txt: map[string][]string{}, cname: map[string]string{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		name := strings.TrimSuffix(q.Name, ".")
		z.mu.Lock()
		txt, target := z.txt[name], z.cname[name]
		z.mu.Unlock()
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
		}
		switch {
		case target != "":
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: target + "."})
		case q.Qtype == dns.TypeTXT && len(txt) > 0:
			for _, v := range txt {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{v}})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *zone) setTXT(name string, vals ...string) {
	z.mu.Lock()
	z.txt[name] = vals
	z.mu.Unlock()
}

func (z *zone) setCNAME(name, target string) {
	z.mu.Lock()
	z.cname[name] = target
	z.mu.Unlock()
}

// hostRoot is the root host serves as a site (its session document), or
// "" when host serves no site.
func hostRoot(t *testing.T, tg *testStack, host string) string {
	t.Helper()
	resp, body := tg.get(t, "http://"+host+gateway.SessionPath)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	var s api.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("session on %s: %v", host, err)
	}
	return s.Root
}

// Custom domains: attached by the site's owner, served only once proven
// (TXT or CNAME), following the site through deploys and rollbacks; a
// domain is one site's, the other site's token can do nothing with it;
// certificates only for proven domains.
func TestCustomDomains(t *testing.T) {
	z := startZone(t)
	bus := openBus(t, "gw-domains")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, SiteDomain: "sites.test", DNSServer: z.addr},
		gateway.Config{Domain: "sites.test"})
	var alpha, beta api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"alpha"}`, http.StatusCreated, &alpha)
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"beta"}`, http.StatusCreated, &beta)
	ctx := t.Context()
	r1, r2 := testCID(t, "alpha one"), testCID(t, "alpha two")
	if _, err := tg.ctl.Sites().Publish(ctx, "alpha", r1); err != nil {
		t.Fatal(err)
	}

	// Refused names.
	for _, bad := range []string{"alpha.sites.test", "x.alpha.sites.test", "127.0.0.1", "localhost", "a.localhost", "nodot", "-a.example", "a_b.example", strings.Repeat("a", 64) + ".example"} {
		body, _ := json.Marshal(api.AttachDomain{Domain: bad})
		tg.apiJSON(t, "POST", "/v1/sites/alpha/domains", alpha.Token, string(body), http.StatusBadRequest, nil)
	}

	var rec api.DomainRecord
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains", alpha.Token, `{"domain":"WWW.Alpha.Example."}`, http.StatusCreated, &rec)
	if rec.Domain != "www.alpha.example" || rec.Verified || rec.TXTName != "_verity-challenge.www.alpha.example" ||
		rec.TXTValue != "verity-verify="+rec.Token || rec.CNAMETarget != "alpha.sites.test" {
		t.Fatalf("attached %+v", rec)
	}
	// Pending: not served, no certificate.
	if got := hostRoot(t, tg, "www.alpha.example"); got != "" {
		t.Fatalf("pending domain serves %s", got)
	}
	if err := tg.AllowCertificate(ctx, "www.alpha.example"); err == nil {
		t.Fatal("a certificate allowed for a pending domain")
	}
	// Another site cannot take it, nor act on it.
	tg.apiJSON(t, "POST", "/v1/sites/beta/domains", beta.Token, `{"domain":"www.alpha.example"}`, http.StatusConflict, nil)
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/www.alpha.example/verify", beta.Token, "", http.StatusForbidden, nil)
	tg.apiJSON(t, "POST", "/v1/sites/beta/domains/www.alpha.example/verify", beta.Token, "", http.StatusNotFound, nil)
	tg.apiJSON(t, "DELETE", "/v1/sites/beta/domains/www.alpha.example", beta.Token, "", http.StatusNotFound, nil)

	// No proof, then a wrong one: refused, saying what to add.
	msg := tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/www.alpha.example/verify", alpha.Token, "", http.StatusConflict, nil)
	if !strings.Contains(msg, rec.TXTName) || !strings.Contains(msg, rec.TXTValue) {
		t.Fatalf("refusal does not say what to add: %s", msg)
	}
	z.setTXT(rec.TXTName, "verity-verify=0000")
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/www.alpha.example/verify", alpha.Token, "", http.StatusConflict, nil)
	if got := hostRoot(t, tg, "www.alpha.example"); got != "" {
		t.Fatalf("unproven domain serves %s", got)
	}

	// The TXT proof: served, and it follows the site.
	z.setTXT(rec.TXTName, "unrelated", rec.TXTValue)
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/www.alpha.example/verify", alpha.Token, "", http.StatusOK, &rec)
	if !rec.Verified || rec.Method != "txt" {
		t.Fatalf("verified %+v", rec)
	}
	if got := hostRoot(t, tg, "www.alpha.example"); got != r1 {
		t.Fatalf("www.alpha.example serves %q, want %s", got, r1)
	}
	if err := tg.AllowCertificate(ctx, "www.alpha.example"); err != nil {
		t.Fatalf("no certificate for the proven domain: %v", err)
	}
	if _, err := tg.ctl.Sites().Publish(ctx, "alpha", r2); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the domain to follow the deploy", func() bool { return hostRoot(t, tg, "www.alpha.example") == r2 })
	if _, err := tg.ctl.Sites().Rollback(ctx, "alpha", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the domain to follow the rollback", func() bool { return hostRoot(t, tg, "www.alpha.example") == r1 })

	// The CNAME proof.
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains", alpha.Token, `{"domain":"cdn.alpha.example"}`, http.StatusCreated, &rec)
	z.setCNAME("cdn.alpha.example", "beta.sites.test") // another site's origin proves nothing
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/cdn.alpha.example/verify", alpha.Token, "", http.StatusConflict, nil)
	z.setCNAME("cdn.alpha.example", "alpha.sites.test")
	tg.apiJSON(t, "POST", "/v1/sites/alpha/domains/cdn.alpha.example/verify", alpha.Token, "", http.StatusOK, &rec)
	if rec.Method != "cname" {
		t.Fatalf("verified %+v", rec)
	}
	var list []api.DomainRecord
	tg.apiJSON(t, "GET", "/v1/sites/alpha/domains", alpha.Token, "", http.StatusOK, &list)
	if len(list) != 2 || list[0].Domain != "cdn.alpha.example" || list[1].Domain != "www.alpha.example" {
		t.Fatalf("list %+v", list)
	}

	// Removed: not served any more, and free for another site.
	tg.apiJSON(t, "DELETE", "/v1/sites/alpha/domains/www.alpha.example", alpha.Token, "", http.StatusNoContent, nil)
	if got := hostRoot(t, tg, "www.alpha.example"); got != "" {
		t.Fatalf("removed domain serves %s", got)
	}
	tg.apiJSON(t, "POST", "/v1/sites/beta/domains", beta.Token, `{"domain":"www.alpha.example"}`, http.StatusCreated, nil)

	// Every change is an event.
	var seen []events.Type
	fctx, cancel := context.WithTimeout(ctx, testutil.Scale(10*time.Second))
	defer cancel()
	_ = bus.Follow(fctx, events.FollowOptions{Types: []events.Type{events.TypeDomainAttached, events.TypeDomainVerified, events.TypeDomainRemoved}, Last: 100, NoWait: true}, func(ev events.Event) error {
		switch ev.Type {
		case events.TypeDomainAttached, events.TypeDomainVerified, events.TypeDomainRemoved:
			seen = append(seen, ev.Type)
		}
		if len(seen) == 6 {
			cancel()
		}
		return nil
	})
	want := []events.Type{events.TypeDomainAttached, events.TypeDomainVerified, events.TypeDomainAttached, events.TypeDomainVerified, events.TypeDomainRemoved, events.TypeDomainAttached}
	if len(seen) != len(want) {
		t.Fatalf("domain events %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("domain events %v, want %v", seen, want)
		}
	}
}
