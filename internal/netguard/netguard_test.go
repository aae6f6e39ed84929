package netguard

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860::8888": true, "::ffff:8.8.8.8": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false,
		"fe80::1": false, "fd00::1": false, "::": false, "::ffff:127.0.0.1": false, "224.0.0.1": false,
	} {
		if got := Public(netip.MustParseAddr(a)); got != want {
			t.Errorf("Public(%s) = %v, want %v", a, got, want)
		}
	}
}

// A dialer with the guard's Control never connects to a loopback server,
// whatever name led there; with AllowPrivate it does.
func TestControlRefusesAtDial(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	for _, allow := range []bool{false, true} {
		d := &net.Dialer{Control: Guard{AllowPrivate: allow}.Control}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		resp, err := c.Get(srv.URL)
		if allow {
			if err != nil {
				t.Fatalf("allowed: %v", err)
			}
			resp.Body.Close()
			continue
		}
		if err == nil || !errors.Is(err, ErrRefused) {
			t.Fatalf("refused: got %v, want ErrRefused", err)
		}
	}
	if hits != 1 {
		t.Fatalf("the server saw %d requests, want 1 (the allowed one)", hits)
	}
}
