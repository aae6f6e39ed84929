package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func addr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func allowN(l *Limiter[string], k string, n int) (ok int) {
	for range n {
		if l.Allow(k) {
			ok++
		}
	}
	return ok
}

func TestLimiterBurstAndRate(t *testing.T) {
	c := newClock()
	l := New[string](Config{Rate: 2, Burst: 5, Now: c.now})
	if got := allowN(l, "a", 10); got != 5 {
		t.Fatalf("burst: %d allowed, want 5", got)
	}
	if got := allowN(l, "b", 10); got != 5 {
		t.Fatalf("another key is not limited by the first: %d allowed", got)
	}
	c.add(time.Second) // two tokens back
	if got := allowN(l, "a", 10); got != 2 {
		t.Fatalf("after 1 s at 2/s: %d allowed, want 2", got)
	}
}

func TestLimiterNoRateAllowsAll(t *testing.T) {
	l := New[string](Config{})
	if got := allowN(l, "a", 1000); got != 1000 || l.Len() != 0 {
		t.Fatalf("Rate 0: %d allowed, %d keys", got, l.Len())
	}
}

// A key whose bucket refilled is forgotten, and forgetting it changes
// nothing: its next call sees a full bucket, as it would have.
func TestLimiterForgetsRefilledKeys(t *testing.T) {
	c := newClock()
	l := New[string](Config{Rate: 1, Burst: 2, SweepInterval: time.Minute, Now: c.now})
	for i := range 1000 {
		l.Allow(strconv.Itoa(i))
	}
	if l.Len() != 1000 {
		t.Fatalf("%d keys", l.Len())
	}
	l.Allow("busy")
	l.Allow("busy")
	c.add(time.Minute)
	l.Allow("busy") // sweeps: every other key refilled long ago
	if l.Len() != 1 {
		t.Fatalf("after a sweep %d keys remain, want 1 (busy)", l.Len())
	}
	if allowN(l, "0", 5) != 2 {
		t.Fatal("a forgotten key does not start with a full burst")
	}
}

// MaxKeys bounds memory even when no bucket has refilled.
func TestLimiterMaxKeys(t *testing.T) {
	c := newClock()
	l := New[string](Config{Rate: 0.001, Burst: 1, MaxKeys: 100, Now: c.now})
	for i := range 10_000 {
		l.Allow(strconv.Itoa(i))
		c.add(time.Millisecond)
	}
	if l.Len() > 100 {
		t.Fatalf("%d keys held, cap 100", l.Len())
	}
	// The most recent keys are the ones kept (least recently used go).
	if l.Allow("9999") {
		t.Fatal("the most recent key was evicted")
	}
}

func TestPrefixes(t *testing.T) {
	for _, tc := range []struct {
		p    Prefixes
		a, b string
		same bool
	}{
		{Prefixes{}, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{Prefixes{}, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{Prefixes{}, "192.0.2.1", "192.0.2.2", false},
		{Prefixes{}, "192.0.2.1", "::ffff:192.0.2.1", true},
		{Prefixes{IPv4: 24}, "192.0.2.1", "192.0.2.200", true},
		{Prefixes{IPv6: 48}, "2001:db8:1:2::1", "2001:db8:1:3::1", true},
		{Prefixes{IPv6: 128}, "2001:db8::1", "2001:db8::2", false},
		{Prefixes{}, "fe80::1%eth0", "fe80::1%eth1", true},
	} {
		if got := tc.p.Key(addr(tc.a)) == tc.p.Key(addr(tc.b)); got != tc.same {
			t.Errorf("%+v: %s and %s same key = %v, want %v", tc.p, tc.a, tc.b, got, tc.same)
		}
	}
	if k := (Prefixes{}).Key(netip.Addr{}); k.IsValid() {
		t.Errorf("unknown address keyed as %v", k)
	}
}

// One IPv6 /64 shares one bucket, whatever address within it is used.
func TestAddrLimiterGroupsSlash64(t *testing.T) {
	c := newClock()
	l := NewAddr(Config{Rate: 1, Burst: 3, Now: c.now}, Prefixes{})
	ok := 0
	for i := range 10 {
		if l.Allow(addr("2001:db8:0:1::" + strconv.FormatInt(int64(i+1), 16))) {
			ok++
		}
	}
	if ok != 3 {
		t.Fatalf("10 addresses of one /64: %d allowed, want 3", ok)
	}
	if !l.Allow(addr("2001:db8:0:2::1")) {
		t.Fatal("the next /64 is limited too")
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter[string](2)
	if !c.Acquire("a") || !c.Acquire("a") || c.Acquire("a") {
		t.Fatal("cap of 2 not applied")
	}
	if !c.Acquire("b") {
		t.Fatal("another key is capped by the first")
	}
	c.Release("a")
	if !c.Acquire("a") {
		t.Fatal("a released slot is not given again")
	}
	c.Release("a")
	c.Release("a")
	c.Release("b")
	if c.Len() != 0 {
		t.Fatalf("%d keys held after every release", c.Len())
	}
}

func TestListenerCapsPerAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan netip.Addr, 100)
	l := NewListener(ln, ListenerConfig{MaxPerKey: 3, OnRefuse: func(a netip.Addr) { refused <- a }})
	defer l.Close()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// A refused connection may be reset before Dial returns.
	dial := func(from string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		if c, err := d.Dial("tcp", ln.Addr().String()); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	for range 5 {
		dial("127.0.0.2")
	}
	dial("127.0.0.1")
	var got []net.Conn
	for len(got) < 4 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(testutil.Scale(5 * time.Second)):
			t.Fatalf("%d connections accepted, want 4 (3 from .2, 1 from .1)", len(got))
		}
	}
	for range 2 {
		select {
		case a := <-refused:
			if a != addr("127.0.0.2") {
				t.Fatalf("refused %v", a)
			}
		case <-time.After(testutil.Scale(5 * time.Second)):
			t.Fatal("the connections over the cap were not refused")
		}
	}
	if h := l.Held(addr("127.0.0.2")); h != 3 {
		t.Fatalf("127.0.0.2 holds %d, want 3", h)
	}
	// Closing a connection frees its slot, once.
	for _, c := range got {
		if ip := addrOf(c.RemoteAddr()); ip == addr("127.0.0.2") {
			c.Close()
			c.Close()
			break
		}
	}
	if h := l.Held(addr("127.0.0.2")); h != 2 {
		t.Fatalf("after a close 127.0.0.2 holds %d, want 2", h)
	}
}

func TestTrustedProxiesClient(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5", nil, "192.0.2.1"},
		{"192.0.2.1:5", []string{"198.51.100.7"}, "192.0.2.1"},                          // untrusted peer: header ignored
		{"10.1.2.3:5", []string{"198.51.100.7"}, "198.51.100.7"},                        // one trusted hop
		{"10.1.2.3:5", []string{"203.0.113.9, 198.51.100.7, 10.9.9.9"}, "198.51.100.7"}, // spoofed left part skipped
		{"10.1.2.3:5", []string{"203.0.113.9", "198.51.100.7"}, "198.51.100.7"},
		{"[2001:db8::1]:5", []string{"2001:db8:5::7"}, "2001:db8:5::7"},
		{"10.1.2.3:5", nil, "10.1.2.3"},
		{"10.1.2.3:5", []string{"10.0.0.9"}, "10.1.2.3"}, // only proxies: the peer
		{"10.1.2.3:5", []string{"nonsense"}, "10.1.2.3"}, // mangled: the peer
		{"10.1.2.3:5", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := tp.Client(r); got != addr(tc.want) {
			t.Errorf("%s %q: client %v, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := ParseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix is accepted")
	}
	if (TrustedProxies{}).Client(&http.Request{RemoteAddr: "@"}).IsValid() {
		t.Error("an unparsable peer gives a client")
	}
}

func FuzzTrustedProxies(f *testing.F) {
	f.Add("10.0.0.0/8", "10.1.2.3:5", "203.0.113.9, 198.51.100.7")
	f.Add("2001:db8::1", "[2001:db8::1]:5", "2001:db8:5::7")
	f.Add("nonsense", "@", ",,,")
	f.Fuzz(func(t *testing.T, proxy, remote, xff string) {
		tp, err := ParseTrustedProxies([]string{proxy})
		if err != nil {
			return
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := tp.Client(r)
		if peer := peerAddr(remote); !tp.Contains(peer) && got != peer {
			t.Fatalf("untrusted peer %v, client %v", peer, got)
		}
		if got.IsValid() && tp.Contains(got) && got != peerAddr(remote) {
			t.Fatalf("client %v is a trusted proxy", got)
		}
	})
}
