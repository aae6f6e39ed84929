package control

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// missedHeartbeats gives the tests' coordinators (a heartbeat every 50 ms)
// a 1 s window before a node is lost, scaled: a loaded machine delays
// heartbeats.
var missedHeartbeats = int(testutil.Scale(time.Second) / (50 * time.Millisecond))

const testAdmin = "vat_test-admin-token"

// discard is the tests' logger: nothing, unless VERITY_TEST_LOG is set
// (then debug lines on stderr).
func discard() *slog.Logger {
	if os.Getenv("VERITY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openBus opens an embedded bus stored in t.TempDir().
func openBus(t *testing.T, name string) *events.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := events.Open(ctx, events.Config{StoreDir: t.TempDir(), Name: name, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testAssets stands in for the embedded worker files.
func testAssets() fstest.MapFS {
	return fstest.MapFS{
		"verity.js":         {Data: []byte("navigator.serviceWorker.register('/verity-sw.js',{scope:'/'});\n")},
		"verity-sw.js":      {Data: []byte("importScripts('__VERITY_WASM_EXEC_URL__');\nconst WASM = '__VERITY_WASM_URL__';\n")},
		"dist/verity.wasm":  {Data: []byte("\x00asm\x01\x00\x00\x00")},
		"dist/wasm_exec.js": {Data: []byte("// wasm_exec\n")},
	}
}

// testGateway is a running site edge on 127.0.0.1:0 and a client that
// sends every request to it, whatever the URL's host.
type testGateway struct {
	*gateway.Gateway
	client *http.Client
}

// startGateway runs a gateway for cfg until the returned stop (also run
// at cleanup; idempotent).
func startGateway(t *testing.T, cfg gateway.Config) (*testGateway, func()) {
	t.Helper()
	if cfg.Listener == nil {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Assets = testAssets()
	cfg.Logger = discard()
	cfg.AllowPrivateAddrs = true // the tests' nodes are on loopback
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := g.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	addr := g.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testGateway{Gateway: g, client: client}, stop
}

// testStack is a gateway process composed as `verity gateway` composes
// it: a coordinator on the bus, the control plane, and the site edge
// serving both on one listener.
type testStack struct {
	*testGateway
	ctl   *Control
	coord *coordinator.Coordinator
	// opToken is the credential of the stack's test operator, for nodes.
	opToken string
}

// Coordinator is the stack's coordinator.
func (s *testStack) Coordinator() *coordinator.Coordinator { return s.coord }

// startStack composes a stack on bus from ctl and gw (their wiring fields
// are filled in here); stop takes it all down (also run at cleanup).
func startStack(t *testing.T, bus *events.Bus, ctl Config, gw gateway.Config) (*testStack, func()) {
	t.Helper()
	return startStackWith(t, bus, ctl, gw, nil)
}

// startStackWith is startStack with the coordinator's config changed by
// mod.
func startStackWith(t *testing.T, bus *events.Bus, ctl Config, gw gateway.Config, mod func(*coordinator.Config)) (*testStack, func()) {
	t.Helper()
	ctx := t.Context()
	kcfg := coordinator.Config{Bus: bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, AllowPrivateAddrs: true, Logger: discard()}
	if mod != nil {
		mod(&kcfg)
	}
	coord, err := coordinator.New(ctx, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	opToken, err := coord.CreateOperator(ctx, "test")
	if errors.Is(err, coordinator.ErrOperatorExists) {
		// A second stack on the bus: its nodes join as their own operator.
		opToken, err = coord.CreateOperator(ctx, "test-"+coord.ID())
	}
	if err != nil {
		coord.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		coord.Close()
		t.Fatal(err)
	}
	ctl.Bus, ctl.Coordinator, ctl.PublicURL, ctl.Logger = bus, coord, "http://"+ln.Addr().String(), discard()
	if ctl.DataDir == "" {
		ctl.DataDir = t.TempDir()
	}
	c, err := New(ctx, ctl)
	if err != nil {
		ln.Close()
		coord.Close()
		t.Fatal(err)
	}
	closeControl := func() {
		if err := c.Close(); err != nil {
			t.Errorf("control Close: %v", err)
		}
		if err := coord.Close(); err != nil {
			t.Errorf("coordinator Close: %v", err)
		}
	}
	t.Cleanup(closeControl) // after the gateway's cleanup, registered below
	gw.Listener, gw.Bus, gw.Sites, gw.API, gw.Domains = ln, bus, c.Sites(), c, c.Domains()
	gw.Nodes, gw.Offers, gw.Accounts, gw.ScoreSink, gw.Charges = coord, coord, coord, coord.Router(), coord.Ledger()
	tg, stopGateway := startGateway(t, gw)
	stop := func() {
		stopGateway()
		closeControl() // idempotent
	}
	return &testStack{testGateway: tg, ctl: c, coord: coord, opToken: opToken}, stop
}

// do sends method url (with any host: the connection goes to the gateway).
func (tg *testGateway) do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return testutil.Do(t, tg.client, method, url, body, hdr...)
}

func (tg *testGateway) get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return tg.do(t, http.MethodGet, url, nil, hdr...)
}

func (tg *testGateway) session(t *testing.T, site string) api.Session {
	t.Helper()
	resp, body := tg.get(t, tg.SiteURL(site)+gateway.SessionPath[1:])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	var s api.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// joinNode joins a node keyed by seed to the stack's coordinator with rec
// and returns its client.
//
// The record's HTTP URL is replaced by a server answering the
// coordinator's URL proof with the seed's key (its WebTransport URL
// dropped), since nothing serves the URLs rec names.
func joinNode(t *testing.T, s *testStack, seed byte, rec noderecord.Signed) *node.CoordClient {
	t.Helper()
	return joinNodeWith(t, s, seed, rec, nil)
}

// joinNodeWith is joinNode with its client's config changed by mod.
func joinNodeWith(t *testing.T, s *testStack, seed byte, rec noderecord.Signed, mod func(*node.CoordClientConfig)) *node.CoordClient {
	t.Helper()
	key := sitetest.Key(seed)
	r := rec.Record
	r.HTTP, r.WebTransport = proofServer(t, key), ""
	rec, err := noderecord.Sign(r, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.CoordClientConfig{
		URL:           s.URL(),
		Key:           key,
		OperatorToken: s.opToken,
		Record:        func() (noderecord.Signed, error) { return rec, nil },
		Status:        func() nodeproto.Heartbeat { return nodeproto.Heartbeat{Version: "test", Blocks: 7} },
		MinBackoff:    20 * time.Millisecond,
		Logger:        discard(),
	}
	if mod != nil {
		mod(&cfg)
	}
	nc, err := node.NewCoordClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// proofServer answers the coordinator's URL proofs with key, and nothing
// else (404), and returns its URL.
func proofServer(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	id := noderecord.NodeIDFromKey(key.Public().(ed25519.PublicKey))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce, err := hex.DecodeString(r.URL.Query().Get("c"))
		if r.URL.Path != nodeproto.ProofPath || err != nil {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(nodeproto.URLProof{Node: id, Signature: ed25519.Sign(key, nodeproto.ProofSigningBytes(id, nonce))})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func testCID(t *testing.T, data string) string {
	t.Helper()
	c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// waitFor waits until cond holds, for at most 10 s (scaled).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}
