package coordinator_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// runRealNode runs a storage node joined to e's coordinator with the test
// operator's credential.
func runRealNode(t *testing.T, e *env) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{
		DataDir:       filepath.Join(t.TempDir(), "node"),
		Coordinator:   e.srv.url,
		OperatorToken: operatorToken(e.bus),
		WebRTC:        node.WebRTCConfig{Disabled: true},
		Logger:        testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	return n
}

// recordWith signs, with k, a record naming urls (HTTP, WebTransport) and
// the certificate hashes of like.
func recordWith(t *testing.T, k nodeKey, httpURL, wtURL string, like noderecord.Record) noderecord.Signed {
	t.Helper()
	now := time.Now()
	s, err := noderecord.Sign(noderecord.Record{
		HTTP: httpURL, WebTransport: wtURL, CertHashes: like.CertHashes,
		Issued: now.Add(-time.Minute), Expires: now.Add(time.Hour),
	}, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A fresh identity that advertises another node's URLs is refused: the
// URLs answer the proof with the other node's key, over HTTP and over
// WebTransport. The real node is listed (its own proof passes); the
// impostor never is. A session whose heartbeat swaps its URLs for
// another's is closed.
func TestURLOfAnotherNodeRefused(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) { c.AllowPrivateAddrs = true })
	real := runRealNode(t, e)
	eventually(t, "the real node listed", func() bool { return hasNode(t, e.coord, real.ID()) })
	rr := real.Record().Record
	if rr.WebTransport == "" {
		t.Fatal("the node publishes no WebTransport URL")
	}

	for _, tc := range []struct{ name, http, wt string }{
		{"both URLs", rr.HTTP, rr.WebTransport},
		{"its HTTP URL", rr.HTTP, ""},
		{"its WebTransport URL", "", rr.WebTransport},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t)
			r := dialRaw(t, e.wsURL())
			r.send(joinFor(r.ch, k, recordWith(t, k, tc.http, tc.wt, rr)))
			ce := r.closed()
			if ce.Code != coordinator.StatusURLRefused || !strings.Contains(ce.Reason, "another key") {
				t.Fatalf("close = %d %q, want %d: answers with another key", ce.Code, ce.Reason, coordinator.StatusURLRefused)
			}
			if _, ok := stateOf(t, e.coord, k.id); ok {
				t.Fatal("the impostor was recorded")
			}
		})
	}

	// A node that proved URLs of its own (a stand-in answering with its
	// key) cannot switch to the real node's URLs in a heartbeat.
	k := newKey(t)
	proofSrv := proofServer(t, k)
	r := dialRaw(t, e.wsURL())
	r.send(joinFor(r.ch, k, recordWith(t, k, proofSrv, "", rr)))
	if m := r.read(); m.Type != nodeproto.MsgWelcome {
		t.Fatalf("own URL: %+v, want welcome", m)
	}
	swapped := recordWith(t, k, rr.HTTP, rr.WebTransport, rr)
	r.send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &nodeproto.Heartbeat{Record: &swapped}})
	if ce := r.closed(); ce.Code != coordinator.StatusURLRefused {
		t.Fatalf("URL swap in a heartbeat: close %d %q", ce.Code, ce.Reason)
	}
	if s, _ := stateOf(t, e.coord, k.id); s.Record.Record.HTTP != proofSrv {
		t.Fatalf("the stored record names %q", s.Record.Record.HTTP)
	}
}

// Without --allow-private-addrs, a node whose URLs are on loopback,
// private or link-local addresses is refused before any of its URLs is
// dialed, and a host name resolving to one is too.
func TestPrivateAddressRefused(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) { c.URLProver = &coordinator.URLProof{} })
	for _, tc := range []struct{ name, http, wt string }{
		{"loopback", "http://127.0.0.1:4001", ""},
		{"private", "http://10.1.2.3:4001", ""},
		{"link-local metadata", "http://169.254.169.254", ""},
		{"IPv6 loopback", "http://[::1]:4001", ""},
		{"IPv4-mapped private", "http://[::ffff:192.168.1.1]:80", ""},
		{"CGNAT", "http://100.64.0.1", ""},
		{"name resolving to loopback", "http://localhost:4001", ""},
		{"private WebTransport", "", "https://192.168.0.7:4433/verity/v1"},
		{"loopback HTTP, private WebTransport", "http://127.0.0.1:4001", "https://172.16.0.1:4433/verity/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t)
			r := dialRaw(t, e.wsURL())
			r.send(joinFor(r.ch, k, recordWith(t, k, tc.http, tc.wt, signedRecord(t, k, 1).Record)))
			ce := r.closed()
			if ce.Code != coordinator.StatusURLRefused {
				t.Fatalf("close = %d %q, want %d", ce.Code, ce.Reason, coordinator.StatusURLRefused)
			}
			if !strings.Contains(ce.Reason, "public address") {
				t.Fatalf("reason %q does not say the address is not public", ce.Reason)
			}
			if _, ok := stateOf(t, e.coord, k.id); ok {
				t.Fatal("a node on a private address was recorded")
			}
		})
	}

}

// proofServer answers URL proofs with k, as a node would, and returns its
// URL.
func proofServer(t *testing.T, k nodeKey) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce, err := hex.DecodeString(r.URL.Query().Get("c"))
		if r.URL.Path != nodeproto.ProofPath || err != nil {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(nodeproto.URLProof{Node: k.id, Signature: ed25519.Sign(k.priv, nodeproto.ProofSigningBytes(k.id, nonce))})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
