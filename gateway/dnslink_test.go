package gateway

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

func TestParseDNSLink(t *testing.T) {
	const c = "bafkqaaa"
	for _, tc := range []struct {
		txts []string
		root string
		ok   bool
	}{
		{[]string{"dnslink=/ipfs/" + c}, c, true},
		{[]string{"v=spf1 -all", " dnslink=/ipfs/" + c + "/sub/path "}, c, true},
		{[]string{"dnslink=/ipfs/" + c, "dnslink=/ipfs/bafkqaaa"}, "", false}, // ambiguous
		{[]string{"dnslink=/ipns/example.com"}, "", false},
		{[]string{"dnslink=/ipfs/not-a-cid"}, "", false},
		{[]string{"hello"}, "", false},
		{nil, "", false},
	} {
		root, err := parseDNSLink("example.com", tc.txts)
		if tc.ok != (err == nil) || root != tc.root {
			t.Errorf("%q: root %q err %v", tc.txts, root, err)
		}
		if err != nil && !errors.Is(err, ErrUnknownSite) {
			t.Errorf("%q: error %v does not wrap ErrUnknownSite", tc.txts, err)
		}
	}
	for host, want := range map[string]bool{
		"blog.example.com": true, "a.b": true, "_x.example": true,
		"localhost": false, "127.0.0.1": false, "::1": false, "-a.example": false,
		"a..example": false, "exa mple.com": false, "": false, strings.Repeat("a", 64) + ".com": false,
	} {
		if got := validHostname(host); got != want {
			t.Errorf("validHostname(%q) = %v, want %v", host, got, want)
		}
	}
}

// dnsServer is a real DNS server on loopback answering TXT records from a
// table the test can change.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string // fqdn → TXT strings
}

func startDNS(t *testing.T, txt map[string][]string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{addr: pc.LocalAddr().String(), txt: txt}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		s.mu.Lock()
		vals, ok := s.txt[req.Question[0].Name]
		s.mu.Unlock()
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, v := range vals {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *dnsServer) set(name string, vals ...string) {
	s.mu.Lock()
	s.txt[name] = vals
	s.mu.Unlock()
}

// Custom domains are served through DNSLink records looked up on a real
// DNS server; admin hosts stay admin; records are re-read after the TTL.
func TestDNSLinkCustomDomains(t *testing.T) {
	var nw *network
	dnsSrv := startDNS(t, map[string][]string{})
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	nw = startNetworkWith(t, 1, sitetest.Files(), func(c *Config) {
		c.DNSLink = NewDNSLink(DNSLinkConfig{Server: dnsSrv.addr, TTL: time.Minute, Now: clock})
		c.AdminHosts = []string{"gw.example.net"}
	})
	dnsSrv.set("_dnslink.blog.example.com.", "dnslink=/ipfs/"+nw.root)
	dnsSrv.set("_dnslink.ipns.example.com.", "dnslink=/ipns/k51")

	resp, body := nw.get(t, "http://blog.example.com/")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<h1>home</h1>") {
		t.Fatalf("custom domain: %d %q", resp.StatusCode, body)
	}
	resp, body = nw.get(t, "http://blog.example.com"+SessionPath)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"root":"`+nw.root+`"`) {
		t.Fatalf("custom domain session: %d %q", resp.StatusCode, body)
	}
	for host, want := range map[string]int{
		"nope.example.com": 404, // no record
		"ipns.example.com": 404, // a record Verity does not serve
	} {
		if resp, body := nw.get(t, "http://"+host+"/"); resp.StatusCode != want {
			t.Errorf("%s: %d %q, want %d", host, resp.StatusCode, body, want)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "gw.example.net"} {
		if resp, _ := nw.get(t, "http://"+host+"/healthz"); resp.StatusCode != 200 {
			t.Errorf("admin host %s: /healthz %d", host, resp.StatusCode)
		}
	}

	// A new record is used once the cached answer expires (a root some
	// site published: custom domains are billed to that site).
	nw.sites.Set("other", "bafkqaaa")
	dnsSrv.set("_dnslink.blog.example.com.", "dnslink=/ipfs/bafkqaaa")
	if resp, body := nw.get(t, "http://blog.example.com"+SessionPath); !strings.Contains(string(body), nw.root) {
		t.Fatalf("within TTL the cached root is used: %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if resp, body := nw.get(t, "http://blog.example.com"+SessionPath); !strings.Contains(string(body), `"root":"bafkqaaa"`) {
		t.Fatalf("after the TTL the new record is used: %d %q", resp.StatusCode, body)
	}
}

// A DNS server that does not answer is a 502, not a 404, and is not cached.
func TestDNSLinkServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there now
	d := NewDNSLink(DNSLinkConfig{Server: addr, Timeout: 500 * time.Millisecond})
	_, err = d.ResolveDNSLink(t.Context(), "blog.example.com")
	if !errors.Is(err, ErrDNSLink) || statusOf(err) != 502 {
		t.Fatalf("err = %v (status %d), want ErrDNSLink/502", err, statusOf(err))
	}
}
