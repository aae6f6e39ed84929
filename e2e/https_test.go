package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/acme"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/acmetest"
)

// trustingHome makes a HOME whose NSS database (what Chromium on Linux
// trusts besides the system roots) holds rootsPEM.
func trustingHome(t *testing.T, rootsPEM []byte) string {
	t.Helper()
	if _, err := exec.LookPath("certutil"); err != nil {
		t.Fatalf("the HTTPS browser test needs certutil (Debian's libnss3-tools; make test-deps installs it): %v", err)
	}
	home := t.TempDir()
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(home, "roots.pem")
	if err := os.WriteFile(roots, rootsPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + db, "--empty-password"},
		{"-A", "-d", "sql:" + db, "-n", "verity-test-acme-root", "-t", "C,,", "-i", roots},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return home
}

// A site on an https origin that is not localhost, with a certificate the
// gateway obtained from an ACME CA (Pebble) at the first visit, and a
// Chromium that trusts that CA's root and nothing special besides: the
// worker installs and the site's files come from the nodes.
func TestHTTPSOriginServedFromNodes(t *testing.T) {
	httpPort := testutil.FreePorts(t, 2)
	httpsPort := httpPort + 1
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: httpPort, TLSPort: httpsPort})
	home := trustingHome(t, ca.RootsPEM(t))
	e := newEnv(t, envConfig{
		browserFlags: []string{"host-resolver-rules=MAP *.verity.test 127.0.0.1"},
		browserEnv:   []string{"HOME=" + home},
	})

	kv, err := e.net.Bus().KV(events.BucketTLS)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpPort))
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpsPort))
	if err != nil {
		plain.Close()
		t.Fatal(err)
	}
	var g *gateway.Gateway
	m, err := acme.New(acme.Config{KV: kv, CA: ca.Directory, CARoots: ca.APIRoots,
		Allow:    func(ctx context.Context, host string) error { return g.AllowCertificate(ctx, host) },
		HTTPPort: httpPort, TLSPort: httpsPort,
		Logger: slog.New(slog.NewTextHandler(&logWriter{t: t}, nil)).With("part", "acme"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err = gateway.New(gateway.Config{
		Listener: plain,
		Domain:   "verity.test",
		HTTPS:    &gateway.HTTPSConfig{Listener: tlsLn, TLS: m.TLSConfig(), Challenge: m.HTTPHandler, Redirect: true},
		Sites:    e.net.Sites(),
		Nodes:    e.net.Coordinator(),
		Accounts: e.net.Coordinator(),
		Bus:      e.net.Bus(),
		Name:     "gateway-https",
		DataDir:  t.TempDir(),
		// The devnet's nodes are on loopback.
		AllowPrivateAddrs: true,
		Logger:            slog.New(slog.NewTextHandler(&logWriter{t: t}, nil)).With("part", "gateway-https"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); g.Close(); <-done })

	e.site = strings.TrimRight(g.SiteURL(devnet.SiteName), "/")
	if want := "https://demo.verity.test:" + strconv.Itoa(httpsPort); e.site != want {
		t.Fatalf("site URL %s, want %s", e.site, want)
	}
	e.metrics = g.URL() + "/metrics"
	// The first handshake obtains the certificate; wait for it outside the
	// browser, trusting Pebble's roots only.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return acmetest.HostDialer(network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: ca.Roots(t)},
	}}
	testutil.EventuallyErr(t, time.Minute, e.site+" to answer over https", func() error {
		resp, err := client.Get(e.site + "/")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return &httpStatusError{resp.Status}
		}
		return nil
	})

	e.controlled()
	if secure, err := browser.Eval[bool](e.ctx(10*time.Second), e.b, `window.isSecureContext && location.protocol === 'https:'`); err != nil || !secure {
		t.Fatalf("the page is not a secure https context: %v %v", secure, err)
	}
	nodes := e.nodeIDs()
	for _, f := range assets(e.files) {
		res := e.fetchFile(f)
		if n, _ := res.Timing("node"); !nodes[n] {
			t.Errorf("/%s over https came from %q, not from a node (Server-Timing %s)", f.Path, n, res.Headers["server-timing"])
		}
	}
}

type httpStatusError struct{ status string }

func (e *httpStatusError) Error() string { return e.status }
