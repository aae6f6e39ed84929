package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil/acmetest"
)

// serve runs m's challenge and TLS listeners on loopback until the test
// ends and returns their ports.
func serve(t *testing.T, m *Manager, httpLn, tlsLn net.Listener) {
	t.Helper()
	hs := &http.Server{Handler: m.HTTPHandler(http.NotFoundHandler())}
	ts := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Host)
	})}
	go hs.Serve(httpLn)
	go ts.Serve(tls.NewListener(tlsLn, m.TLSConfig()))
	t.Cleanup(func() { hs.Close(); ts.Close() })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// get fetches https://host:port/ trusting roots only.
func get(host string, port int, roots *x509.CertPool) (string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return acmetest.HostDialer(network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	resp, err := c.Get("https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A certificate is obtained from the CA at the first handshake for an
// allowed name, never for another; a second gateway on the same bus
// serves it from the shared storage, with the CA gone.
func TestObtainOnDemandAndShare(t *testing.T) {
	bus := openBus(t)
	kv, err := bus.KV(events.BucketTLS)
	if err != nil {
		t.Fatal(err)
	}
	httpLn, tlsLn := listen(t), listen(t)
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: port(httpLn), TLSPort: port(tlsLn)})
	allow := func(_ context.Context, host string) error {
		if host == "demo.verity.test" {
			return nil
		}
		return errors.New("not a site")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newManager := func(httpPort, tlsPort int) *Manager {
		m, err := New(Config{KV: kv, CA: ca.Directory, CARoots: ca.APIRoots, Allow: allow,
			HTTPPort: httpPort, TLSPort: tlsPort, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	a := newManager(port(httpLn), port(tlsLn))
	serve(t, a, httpLn, tlsLn)
	roots := ca.Roots(t)
	body, err := get("demo.verity.test", port(tlsLn), roots)
	if err != nil || body != "hello demo.verity.test:"+strconv.Itoa(port(tlsLn)) {
		t.Fatalf("allowed name: %q, %v", body, err)
	}
	if _, err := get("other.verity.test", port(tlsLn), roots); err == nil {
		t.Fatal("a name the policy refuses got a certificate")
	}

	// Another gateway of the cluster, with the CA gone.
	ca.Stop()
	httpLn2, tlsLn2 := listen(t), listen(t)
	b := newManager(port(httpLn2), port(tlsLn2))
	serve(t, b, httpLn2, tlsLn2)
	if body, err := get("demo.verity.test", port(tlsLn2), roots); err != nil || !strings.HasPrefix(body, "hello demo.verity.test") {
		t.Fatalf("second gateway, shared storage: %q, %v", body, err)
	}
}
