package browser

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// LoopbackDial dials addr, sending NAME.localhost and localhost to
// 127.0.0.1 without a DNS lookup (as Chromium does), so that site origins
// such as http://demo.localhost:PORT work from Go and no query leaves the
// machine.
func LoopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, network, addr)
}

// NewHTTPClient returns a client that dials with LoopbackDial and gives up
// on a request after timeout (0: no overall timeout).
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         LoopbackDial,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// httpClient is the client of Scrape.
var httpClient = NewHTTPClient(0)
