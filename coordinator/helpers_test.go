package coordinator_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
)

// missedHeartbeats gives the tests' coordinators (a heartbeat every 50 ms)
// a 1 s window before a node is lost, scaled: a loaded machine delays
// heartbeats.
var missedHeartbeats = int(testutil.Scale(time.Second) / (50 * time.Millisecond))

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openBus(t *testing.T) *events.Bus {
	t.Helper()
	b, err := events.Open(ctxT(t), events.Config{StoreDir: t.TempDir(), Name: "test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// server serves whichever coordinator is current on one loopback listener,
// so a node client keeps its URL across coordinator restarts.
type server struct {
	srv *http.Server
	url string
	cur atomic.Pointer[coordinator.Coordinator]
	wg  sync.WaitGroup
}

func startServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.cur.Load()
		if c == nil {
			http.Error(w, "no coordinator", http.StatusServiceUnavailable)
			return
		}
		c.Handler().ServeHTTP(w, r)
	})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.srv.Close()
		s.wg.Wait()
	})
	return s
}

func newCoordinator(t *testing.T, bus *events.Bus, mod func(*coordinator.Config)) *coordinator.Coordinator {
	t.Helper()
	cfg := coordinator.Config{
		Bus:               bus,
		HeartbeatInterval: 50 * time.Millisecond,
		MissedHeartbeats:  missedHeartbeats, // a 1 s window (scaled): loaded machines delay heartbeats
		ChallengeTTL:      5 * time.Second,
		MaxMessageBytes:   16 << 10,
		Logger:            testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	if cfg.URLProver == nil && !cfg.AllowPrivateAddrs {
		// The hand-made records of most tests name URLs nobody serves
		// and their nodes hold nothing; the tests of the proofs set a
		// prover or the allowance.
		cfg.URLProver = acceptURLs{}
		coordinator.PassAudits(&cfg)
	}
	c, err := coordinator.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	registerOperator(t, bus, c)
	return c
}

// opTokens holds the operator credential of each test bus ("test", made by
// the first coordinator on it) and of each coordinator id, for joinFor.
var opTokens sync.Map

// registerOperator creates the bus's test operator unless it exists and
// records its credential under c's id.
func registerOperator(t *testing.T, bus *events.Bus, c *coordinator.Coordinator) {
	t.Helper()
	tok, ok := opTokens.Load(bus)
	if !ok {
		created, err := c.CreateOperator(ctxT(t), "test")
		if err != nil {
			t.Fatal(err)
		}
		tok = created
		opTokens.Store(bus, tok)
	}
	opTokens.Store(c.ID(), tok)
}

// operatorToken is the credential of bus's test operator.
func operatorToken(bus *events.Bus) string {
	tok, _ := opTokens.Load(bus)
	s, _ := tok.(string)
	return s
}

// env is a bus, a coordinator and a loopback server for it.
type env struct {
	bus   *events.Bus
	coord *coordinator.Coordinator
	srv   *server
}

func newEnv(t *testing.T, mod func(*coordinator.Config)) *env {
	bus := openBus(t)
	srv := startServer(t)
	c := newCoordinator(t, bus, mod)
	srv.cur.Store(c)
	return &env{bus: bus, coord: c, srv: srv}
}

func (e *env) wsURL() string {
	return "ws" + strings.TrimPrefix(e.srv.url, "http") + nodeproto.ConnectPath
}

type nodeKey struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	id   string
}

func newKey(t *testing.T) nodeKey {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return nodeKey{pub, priv, noderecord.NodeIDFromKey(pub)}
}

func signedRecord(t *testing.T, k nodeKey, port int) noderecord.Signed {
	t.Helper()
	now := time.Now()
	s, err := noderecord.Sign(noderecord.Record{
		HTTP:         "http://127.0.0.1:" + strconv.Itoa(port),
		WebTransport: "https://127.0.0.1:" + strconv.Itoa(port+1) + "/verity/v1",
		CertHashes:   []noderecord.CertHash{{SHA256: make([]byte, 32), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(13 * 24 * time.Hour)}},
		Issued:       now.Add(-time.Minute),
		Expires:      now.Add(time.Hour),
	}, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw is a hand-driven node connection.
type raw struct {
	t  *testing.T
	ws *websocket.Conn
	ch nodeproto.Challenge
}

func dialRaw(t *testing.T, url string) *raw {
	t.Helper()
	ws, _, err := websocket.Dial(ctxT(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	r := &raw{t: t, ws: ws}
	m := r.read()
	if m.Type != nodeproto.MsgChallenge || m.Challenge == nil || len(m.Challenge.Nonce) != nodeproto.NonceSize {
		t.Fatalf("first message = %+v, want a challenge", m)
	}
	r.ch = *m.Challenge
	return r
}

func (r *raw) read() nodeproto.Message {
	r.t.Helper()
	_, data, err := r.ws.Read(ctxT(r.t))
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	var m nodeproto.Message
	if err := json.Unmarshal(data, &m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *raw) send(m any) {
	r.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendBytes(websocket.MessageText, b)
}

func (r *raw) sendBytes(typ websocket.MessageType, b []byte) {
	r.t.Helper()
	if err := r.ws.Write(ctxT(r.t), typ, b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// closed reads until the coordinator closes the connection and returns
// its close frame.
func (r *raw) closed() websocket.CloseError {
	r.t.Helper()
	for {
		_, _, err := r.ws.Read(ctxT(r.t))
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			r.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

// joinFor is a join answering ch, with the credential of the test
// operator of the coordinator that issued it.
func joinFor(ch nodeproto.Challenge, k nodeKey, rec noderecord.Signed) nodeproto.Message {
	tok, _ := opTokens.Load(ch.Coordinator)
	op, _ := tok.(string)
	return nodeproto.Message{Type: nodeproto.MsgJoin, Join: &nodeproto.Join{
		Operator: op,
		Node:     k.id, Challenge: ch, Record: rec,
		Signature: ed25519.Sign(k.priv, nodeproto.JoinSigningBytes(ch, k.id)),
		Status:    &nodeproto.Heartbeat{Version: "raw", Region: "NL"},
	}}
}

// eventually waits until cond holds, for at most 10 s (scaled).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// nodeEvents collects node.* events.
func nodeEvents(t *testing.T, bus *events.Bus, durable string) <-chan events.Event {
	ch := make(chan events.Event, 64)
	sub, err := bus.Subscribe(ctxT(t), durable, func(_ context.Context, ev events.Event) error {
		ch <- ev
		return nil
	}, events.TypeNodeJoined, events.TypeNodeLost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return ch
}

func nextEvent(t *testing.T, ch <-chan events.Event) events.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no event")
		return events.Event{}
	}
}

func hasNode(t *testing.T, c *coordinator.Coordinator, id string) bool {
	recs, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Record.NodeID == id {
			return true
		}
	}
	return false
}

func stateOf(t *testing.T, c *coordinator.Coordinator, id string) (coordinator.NodeState, bool) {
	states, err := c.NodeStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Node() == id {
			return s, true
		}
	}
	return coordinator.NodeState{}, false
}

// acceptURLs is a URLProver that takes every record's URLs as proven.
type acceptURLs struct{}

func (acceptURLs) ProveURLs(context.Context, noderecord.Signed) error { return nil }
