package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialFrom connects to the gateway from the loopback address from.
func dialFrom(tg *testGateway, from string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", tg.Addr().String())
}

// A hostile client opens thousands of slow connections (request heads it
// never finishes) from 127.0.0.2. It holds at most its per-client share;
// the rest are closed at once, and a normal client on 127.0.0.1 keeps
// getting its pages.
func TestSlowConnectionsFromOneAddress(t *testing.T) {
	const (
		hostile  = 2000
		maxConns = 512
		perAddr  = 64
	)
	tg := startGateway(t, Config{
		Sites:             NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:             StaticRecords(),
		MaxConns:          maxConns,
		MaxConnsPerClient: perAddr,
	})
	site := tg.SiteURL("demo")
	if resp, _ := tg.get(t, site+"verity.js"); resp.StatusCode != 200 {
		t.Fatalf("verity.js: %s", resp.Status)
	}

	// The attack: connections that send half a request head and stall.
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	var opened atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < hostile; i += 8 {
				c, err := dialFrom(tg, "127.0.0.2")
				if err != nil {
					continue // refused at once: what the gateway should do
				}
				opened.Add(1)
				_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: demo.localhost\r\n")
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	// The normal client, while the hostile connections are held: every
	// request succeeds, each within a generous bound (the slow heads are
	// held for ReadHeaderTimeout, 10 s, if they take the server's slots).
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site+"verity.js", nil)
		req.Close = i%2 == 0 // new connections too, not only a kept-alive one
		resp, err := tg.client.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("normal client, request %d, during the attack: %v", i, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("normal client, request %d: %s %v", i, resp.Status, err)
		}
	}

	// The hostile client's excess connections were closed by the server.
	mu.Lock()
	held := append([]net.Conn(nil), conns...)
	mu.Unlock()
	var closed atomic.Int64
	var cw sync.WaitGroup
	for _, c := range held {
		cw.Add(1)
		go func() {
			defer cw.Done()
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeoutErr(err) {
				closed.Add(1)
			}
		}()
	}
	cw.Wait()
	if kept := int64(len(held)) - closed.Load(); kept > perAddr {
		t.Fatalf("the hostile address holds %d connections (of %d opened), cap %d", kept, opened.Load(), perAddr)
	}
	if got := tg.counter(t, "verity_gateway_limited_total", "limit", "conns"); got < hostile-perAddr {
		t.Fatalf("refused connections counted %v", got)
	}
}

// One address sending requests as fast as it can is answered 429 past its
// burst; another address is not affected.
func TestRequestRatePerClient(t *testing.T) {
	tg := startGateway(t, Config{
		Sites:        NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:        StaticRecords(),
		RequestRate:  1,
		RequestBurst: 20,
	})
	host := "demo.localhost"
	conn, err := dialFrom(tg, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hostile := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return dialFrom(tg, "127.0.0.2")
	}}}
	defer hostile.CloseIdleConnections()
	codes := map[int]int{}
	for range 100 {
		resp, err := hostile.Get("http://" + host + "/verity.js")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[200] > 21 || codes[429] < 79 {
		t.Fatalf("hostile client: %v, want at most the burst of 20 (+1 refilled) answered", codes)
	}
	for range 10 {
		if resp, _ := tg.get(t, tg.SiteURL("demo")+"verity.js"); resp.StatusCode != 200 {
			t.Fatalf("another address is limited too: %s", resp.Status)
		}
	}
	if got := tg.counter(t, "verity_gateway_limited_total", "limit", "requests"); got < 79 {
		t.Fatalf("limited requests counted %v", got)
	}
}

// Behind a trusted proxy each visitor (X-Forwarded-For) has its own
// budget; a client that is not a trusted proxy cannot pick its own by
// sending the header.
func TestTrustedProxyClients(t *testing.T) {
	tg := startGateway(t, Config{
		Sites:          NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:          StaticRecords(),
		RequestRate:    0.001,
		RequestBurst:   3,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")},
	})
	from := func(addr string) *http.Client {
		c := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dialFrom(tg, addr)
		}}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	get := func(c *http.Client, xff string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://demo.localhost/verity.js", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	proxy, spoofer := from("127.0.0.3"), from("127.0.0.2")
	for _, visitor := range []string{"198.51.100.1", "198.51.100.2"} {
		for i := range 3 {
			if code := get(proxy, "203.0.113.50, "+visitor); code != 200 {
				t.Fatalf("visitor %s behind the proxy, request %d: %d", visitor, i, code)
			}
		}
		if code := get(proxy, visitor); code != 429 {
			t.Fatalf("visitor %s over its burst: %d, want 429", visitor, code)
		}
	}
	ok := 0
	for i := range 6 {
		if get(spoofer, "198.51.100."+strconv.Itoa(10+i)) == 200 {
			ok++
		}
	}
	if ok != 3 {
		t.Fatalf("an untrusted client naming itself in X-Forwarded-For got %d answers, want its burst of 3", ok)
	}
}
