package browser_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/e2e/browser"
)

// wtServer is a WebTransport echo server on 127.0.0.1 with a self-signed
// certificate the page trusts through serverCertificateHashes.
type wtServer struct {
	URL      string
	CertHash string // base64 SHA-256 of the certificate
}

func startWT(t *testing.T) wtServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(der)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s := &webtransport.Server{
		H3: &http3.Server{
			TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}),
			Handler:   mux,
		},
		CheckOrigin: func(*http.Request) bool { return true },
	}
	webtransport.ConfigureHTTP3Server(s.H3)
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.Upgrade(w, r)
		if err != nil {
			return
		}
		for {
			str, err := sess.AcceptStream(sess.Context())
			if err != nil {
				return
			}
			go func() {
				defer str.Close()
				io.Copy(str, str)
			}()
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(udp)
	}()
	t.Cleanup(func() {
		s.Close()
		udp.Close()
		<-done
	})
	return wtServer{
		URL:      fmt.Sprintf("https://127.0.0.1:%d/echo", udp.LocalAddr().(*net.UDPAddr).Port),
		CertHash: base64.StdEncoding.EncodeToString(hash[:]),
	}
}

// wtEcho opens a WebTransport session from the page, echoes a message over
// a bidirectional stream and returns what came back or the error.
const wtEcho = `async (url, hash) => {
	if (typeof WebTransport === 'undefined') return 'error: WebTransport is not defined';
	const value = Uint8Array.from(atob(hash), c => c.charCodeAt(0));
	try {
		const wt = new WebTransport(url, {serverCertificateHashes: [{algorithm: 'sha-256', value}]});
		await Promise.race([wt.ready, new Promise((_, f) => setTimeout(() => f(new Error('ready timeout')), 5000))]);
		const s = await wt.createBidirectionalStream();
		const w = s.writable.getWriter();
		await w.write(new TextEncoder().encode('ping'));
		await w.close();
		let out = '';
		for await (const c of s.readable) out += new TextDecoder().decode(c);
		wt.close();
		return out;
	} catch (e) { return 'error: ' + e; }
}`

func TestWebTransportCertHash(t *testing.T) {
	wt := startWT(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<title>wt</title>")
	}))
	t.Cleanup(page.Close)
	origin := strings.Replace(page.URL, "127.0.0.1", "wt.localhost", 1)

	for _, tc := range []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"default", nil, true},
		{"no-webtransport", browser.NoWebTransportFlags, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBrowser(t, tc.flags...)
			if err := b.Navigate(t.Context(), origin+"/"); err != nil {
				t.Fatal(err)
			}
			got, err := browser.Call[string](t.Context(), b, wtEcho, wt.URL, wt.CertHash)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok && got != "ping" {
				t.Fatalf("echo over WebTransport = %q, want ping", got)
			}
			if !tc.ok && !strings.HasPrefix(got, "error:") {
				t.Fatalf("WebTransport worked with %v: %q", tc.flags, got)
			}
			t.Logf("%v: %s", tc.flags, got)
		})
	}
}
