package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// missedHeartbeats gives the tests' coordinators (a heartbeat every 50 ms)
// a 1 s window before a node is lost, scaled: a loaded machine delays
// heartbeats.
var missedHeartbeats = int(testutil.Scale(time.Second) / (50 * time.Millisecond))

// The client reconnects with backoff when its coordinator goes away, here
// to a second coordinator sharing the bus and the address.
func TestCoordClientReconnects(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	newCoord := func() *coordinator.Coordinator {
		c, err := coordinator.New(t.Context(), coordinator.Config{Bus: bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, URLProver: acceptURLs{}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var cur atomic.Pointer[coordinator.Coordinator]
	cur.Store(newCoord())
	opToken := testOperator(t, cur.Load())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().Handler().ServeHTTP(w, r) }))
	defer srv.Close()

	key, rec := testRecord(t)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: srv.URL, Key: key, OperatorToken: opToken,
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitUntil(t, "first join", func() bool { return nc.State().Joined })
	first := nc.State().Session

	old := cur.Load()
	c2 := newCoord()
	cur.Store(c2)
	old.Close() // going away: the client reconnects, to c2
	waitUntil(t, "second join", func() bool { s := nc.State(); return s.Joined && s.Session != first && s.Joins == 2 })
	waitUntil(t, "listed by c2", func() bool {
		live, err := c2.LiveNodes(t.Context())
		return err == nil && len(live) == 1 && live[0].Node() == rec.Record.NodeID && live[0].Coordinator == c2.ID()
	})
}

// testRecord is a fresh node key and a valid record of it.
func testRecord(t *testing.T) (ed25519.PrivateKey, noderecord.Signed) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := noderecord.Sign(noderecord.Record{
		HTTP: "http://127.0.0.1:4001", Issued: now.Add(-time.Minute), Expires: now.Add(time.Hour),
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, rec
}

// waitUntil waits until cond holds, for at most 10 s (scaled).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// fakeCoord is a coordinator as far as the wire goes: a WebSocket endpoint
// whose connections the test drives message by message.
type fakeCoord struct {
	t     *testing.T
	srv   *httptest.Server
	conns chan *fakeConn
}

type fakeConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func newFakeCoord(t *testing.T) *fakeCoord {
	t.Helper()
	f := &fakeCoord{t: t, conns: make(chan *fakeConn, 8)}
	stop := make(chan struct{})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != nodeproto.ConnectPath {
			http.NotFound(w, r)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		select {
		case f.conns <- &fakeConn{t: t, ws: ws}:
		case <-stop:
			ws.CloseNow()
		}
	}))
	t.Cleanup(func() {
		close(stop)
		f.srv.Close()
		for {
			select {
			case c := <-f.conns:
				c.ws.CloseNow()
			default:
				return
			}
		}
	})
	return f
}

// accept returns the next connection a client opened.
func (f *fakeCoord) accept() *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.conns:
		f.t.Cleanup(func() { c.ws.CloseNow() })
		return c
	case <-time.After(testutil.Scale(10 * time.Second)):
		f.t.Fatal("no connection from the client")
		return nil
	}
}

func (c *fakeConn) send(m nodeproto.Message) {
	c.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *fakeConn) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message but heartbeats.
func (c *fakeConn) read() nodeproto.Message {
	c.t.Helper()
	for {
		m, err := c.readAny()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if m.Type != nodeproto.MsgHeartbeat {
			return m
		}
	}
}

func (c *fakeConn) readAny() (nodeproto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nodeproto.Message{}, err
	}
	var m nodeproto.Message
	err = json.Unmarshal(data, &m)
	return m, err
}

// join runs the coordinator's side of the handshake, checks the join and
// returns it.
func (c *fakeConn) join(id string, heartbeat time.Duration) nodeproto.Join {
	c.t.Helper()
	ch := nodeproto.Challenge{Nonce: bytes.Repeat([]byte{9}, nodeproto.NonceSize), Coordinator: id, Expires: time.Now().Add(time.Minute)}
	c.send(nodeproto.Message{Type: nodeproto.MsgChallenge, Challenge: &ch})
	m := c.read()
	if m.Type != nodeproto.MsgJoin || m.Join == nil {
		c.t.Fatalf("got %+v, want a join", m)
	}
	j := *m.Join
	if err := j.Record.Verify(time.Now()); err != nil || j.Node != j.Record.Record.NodeID {
		c.t.Fatalf("join with record %+v: %v", j.Record, err)
	}
	if !ed25519.Verify(j.Record.Record.PublicKey, nodeproto.JoinSigningBytes(ch, j.Node), j.Signature) {
		c.t.Fatal("join signature does not verify")
	}
	if !bytes.Equal(j.Challenge.Nonce, ch.Nonce) || j.Challenge.Coordinator != id || !j.Challenge.Expires.Equal(ch.Expires) {
		c.t.Fatalf("challenge echoed as %+v", j.Challenge)
	}
	c.send(nodeproto.Message{Type: nodeproto.MsgWelcome, Welcome: &nodeproto.Welcome{Node: j.Node, Session: "s1", HeartbeatMS: heartbeat.Milliseconds()}})
	return j
}

// startClient starts a client of f, with mod applied to its config.
func startClient(t *testing.T, f *fakeCoord, mod func(*node.CoordClientConfig)) (*node.CoordClient, noderecord.Signed) {
	t.Helper()
	key, rec := testRecord(t)
	cfg := node.CoordClientConfig{
		URL: f.srv.URL, Key: key,
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		Status:     func() nodeproto.Heartbeat { return nodeproto.Heartbeat{Version: "v-test", Blocks: 3, Record: &rec} },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	nc, err := node.NewCoordClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, rec
}

// The handshake: the join answers the challenge with the node key, carries
// the record and the status without its record, and the welcome's interval
// paces the heartbeats.
func TestCoordClientHandshake(t *testing.T) {
	f := newFakeCoord(t)
	nc, rec := startClient(t, f, nil)
	c := f.accept()
	j := c.join("coord-1", 20*time.Millisecond)
	if j.Node != rec.Record.NodeID || j.Status == nil || j.Status.Version != "v-test" || j.Status.Record != nil {
		t.Fatalf("join %+v", j)
	}
	for range 3 {
		m, err := c.readAny()
		if err != nil || m.Type != nodeproto.MsgHeartbeat || m.Heartbeat.Blocks != 3 || m.Heartbeat.Record != nil {
			t.Fatalf("got %+v, %v; want a heartbeat without the unchanged record", m, err)
		}
	}
	if s := nc.State(); !s.Joined || s.Session != "s1" || s.Joins != 1 || s.LastErr != nil {
		t.Fatalf("state %+v", s)
	}
}

// A client told which coordinator to expect does not answer another's
// challenge.
func TestCoordClientWrongCoordinator(t *testing.T) {
	f := newFakeCoord(t)
	nc, _ := startClient(t, f, func(c *node.CoordClientConfig) { c.Coordinator = "coord-1" })
	c := f.accept()
	ch := nodeproto.Challenge{Nonce: make([]byte, nodeproto.NonceSize), Coordinator: "coord-2", Expires: time.Now().Add(time.Minute)}
	c.send(nodeproto.Message{Type: nodeproto.MsgChallenge, Challenge: &ch})
	if m, err := c.readAny(); err == nil {
		t.Fatalf("client answered another coordinator's challenge: %+v", m)
	}
	if s := nc.State(); s.Joins != 0 || s.Joined {
		t.Fatalf("state %+v", s)
	}
}

// Messages out of order or not JSON end the session with
// ErrCoordinatorProtocol; the client then reconnects.
func TestCoordClientProtocolErrors(t *testing.T) {
	f := newFakeCoord(t)
	nc, _ := startClient(t, f, nil)
	c := f.accept()
	c.send(nodeproto.Message{Type: nodeproto.MsgWelcome, Welcome: &nodeproto.Welcome{Session: "early"}})
	c2 := f.accept()
	if err := nc.State().LastErr; !errors.Is(err, node.ErrCoordinatorProtocol) {
		t.Fatalf("LastErr = %v, want ErrCoordinatorProtocol", err)
	}
	c2.join("coord-1", time.Minute)
	waitUntil(t, "joined", func() bool { return nc.State().Joined })
	c2.sendRaw([]byte("{not json"))
	f.accept()
	if s := nc.State(); !errors.Is(s.LastErr, node.ErrCoordinatorProtocol) || s.Joins != 1 {
		t.Fatalf("state %+v, want ErrCoordinatorProtocol after one join", s)
	}
}

// Each message the coordinator sends after welcome reaches its handler;
// unknown ones are ignored.
func TestCoordClientDispatch(t *testing.T) {
	f := newFakeCoord(t)
	placed := make(chan func(string) bool, 1)
	reported := make(chan map[string]int, 1)
	payments := make(chan nodeproto.Payments, 1)
	nc, _ := startClient(t, f, func(cfg *node.CoordClientConfig) {
		cfg.OnPin = func(_ context.Context, p nodeproto.Pin) error {
			if p.Root == "bafybad" {
				return errors.New("no such root")
			}
			return nil
		}
		cfg.OnPlaced = func(_ context.Context, p func(string) bool) { placed <- p }
		cfg.OnReported = func(r map[string]int) { reported <- r }
		cfg.OnPayments = func(p nodeproto.Payments) { payments <- p }
		cfg.Offers = func(_ context.Context, sdp string) (string, error) {
			if sdp == "busy" {
				return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBusy, Message: "full"}
			}
			return "answer to " + sdp, nil
		}
	})
	c := f.accept()
	c.join("coord-1", time.Minute)

	c.send(nodeproto.Message{Type: "from-the-future"})
	c.send(nodeproto.Message{Type: nodeproto.MsgPin}) // no body: ignored

	c.send(nodeproto.Message{Type: nodeproto.MsgPlaced, Placed: &nodeproto.Placed{Roots: []string{"bafya", "bafyb"}}})
	if got := <-placed; !got("bafya") || !got("bafyb") || got("bafyc") {
		t.Fatal("placed does not report the list")
	}

	// A pin answer is followed at once by a heartbeat.
	for _, root := range []string{"bafygood", "bafybad"} {
		c.send(nodeproto.Message{Type: nodeproto.MsgPin, Pin: &nodeproto.Pin{Root: root, CAR: "http://127.0.0.1:1/x.car"}})
		m := c.read()
		if m.Type != nodeproto.MsgPinned || m.Pinned.Root != root || (m.Pinned.Error == "") != (root == "bafygood") {
			t.Fatalf("pin %s answered %+v", root, m)
		}
		if m, err := c.readAny(); err != nil || m.Type != nodeproto.MsgHeartbeat {
			t.Fatalf("after pinned: %+v, %v", m, err)
		}
	}

	c.send(nodeproto.Message{Type: nodeproto.MsgReported, Reported: &nodeproto.Reported{Reasons: map[string]int{"timeout": 2}}})
	if got := <-reported; got["timeout"] != 2 {
		t.Fatalf("reported %v", got)
	}

	c.send(nodeproto.Message{Type: nodeproto.MsgWebRTCOffer, Offer: &nodeproto.WebRTCOffer{ID: "o1", SDP: "offer"}})
	if m := c.read(); m.Type != nodeproto.MsgWebRTCAnswer || *m.Answer != (nodeproto.WebRTCAnswer{ID: "o1", SDP: "answer to offer"}) {
		t.Fatalf("answer %+v", m)
	}
	c.send(nodeproto.Message{Type: nodeproto.MsgWebRTCOffer, Offer: &nodeproto.WebRTCOffer{ID: "o2", SDP: "busy"}})
	if m := c.read(); m.Type != nodeproto.MsgWebRTCAnswer || *m.Answer != (nodeproto.WebRTCAnswer{ID: "o2", Code: nodeproto.OfferCodeBusy, Error: "full"}) {
		t.Fatalf("answer %+v", m)
	}

	// Settling waits for the coordinator to announce payments.
	if _, err := nc.Settle(t.Context(), nodeproto.Batch{Account: "acme"}); !errors.Is(err, node.ErrNoPayments) {
		t.Fatalf("Settle before payments: %v", err)
	}
	c.send(nodeproto.Message{Type: nodeproto.MsgPayments, Payments: &nodeproto.Payments{Full: true, Nodes: 4}})
	if got := <-payments; !got.Full || got.Nodes != 4 {
		t.Fatalf("payments %+v", got)
	}
	type settled struct {
		s   nodeproto.Settled
		err error
	}
	res := make(chan settled, 1)
	go func() {
		s, err := nc.Settle(t.Context(), nodeproto.Batch{Account: "acme"})
		res <- settled{s, err}
	}()
	m := c.read()
	if m.Type != nodeproto.MsgSettle || m.Settle.Batch.Account != "acme" {
		t.Fatalf("settle %+v", m)
	}
	c.send(nodeproto.Message{Type: nodeproto.MsgSettled, Settled: &nodeproto.Settled{ID: m.Settle.ID + 1, Code: "not for you"}})
	c.send(nodeproto.Message{Type: nodeproto.MsgSettled, Settled: &nodeproto.Settled{ID: m.Settle.ID, Code: nodeproto.SettleCodeUnknown}})
	if r := <-res; r.err != nil || r.s.Code != nodeproto.SettleCodeUnknown {
		t.Fatalf("Settle = %+v, %v", r.s, r.err)
	}

	// A session that ends before the answer fails the settlement.
	go func() {
		s, err := nc.Settle(t.Context(), nodeproto.Batch{Account: "acme"})
		res <- settled{s, err}
	}()
	if m := c.read(); m.Type != nodeproto.MsgSettle {
		t.Fatalf("settle %+v", m)
	}
	c.ws.CloseNow()
	if r := <-res; !errors.Is(r.err, node.ErrSessionEnded) {
		t.Fatalf("Settle across the session's end: %v", r.err)
	}
}

// Close leaves with a normal closure (the coordinator records the node as
// leaving), and Settle after Close fails with ErrClosed.
func TestCoordClientCloseLeaves(t *testing.T) {
	f := newFakeCoord(t)
	nc, _ := startClient(t, f, nil)
	c := f.accept()
	c.join("coord-1", time.Minute)
	waitUntil(t, "joined", func() bool { return nc.State().Joined })
	closed := make(chan error, 1)
	go func() {
		for {
			if _, err := c.readAny(); err != nil {
				closed <- err
				return
			}
		}
	}()
	nc.Close()
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("connection ended with %v, want a normal closure", err)
	}
	if _, err := nc.Settle(t.Context(), nodeproto.Batch{}); !errors.Is(err, node.ErrClosed) {
		t.Fatalf("Settle after Close: %v", err)
	}
}

func TestNewCoordClientConfig(t *testing.T) {
	key, rec := testRecord(t)
	record := func() (noderecord.Signed, error) { return rec, nil }
	for _, c := range []struct {
		name string
		cfg  node.CoordClientConfig
	}{
		{"no key", node.CoordClientConfig{URL: "http://127.0.0.1:1", Record: record}},
		{"no record", node.CoordClientConfig{URL: "http://127.0.0.1:1", Key: key}},
		{"no host", node.CoordClientConfig{URL: "/v1/nodes/connect", Key: key, Record: record}},
		{"scheme", node.CoordClientConfig{URL: "ftp://127.0.0.1:1", Key: key, Record: record}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if nc, err := node.NewCoordClient(c.cfg); !errors.Is(err, node.ErrConfig) {
				if nc != nil {
					nc.Close()
				}
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// acceptURLs takes every record's URLs as proven: testRecord names a URL
// nobody serves.
type acceptURLs struct{}

func (acceptURLs) ProveURLs(context.Context, noderecord.Signed) error { return nil }

// A coordinator that says it is going away (its gateway stops or
// restarts) is routine: neither the end of the session nor the refused
// dials while it is down are warnings, for a grace period.
func TestCoordClientQuietWhileCoordinatorRestarts(t *testing.T) {
	var logs lockedBuffer
	f := newFakeCoord(t)
	nc, _ := startClient(t, f, func(cfg *node.CoordClientConfig) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := f.accept()
	c.join("coord-1", time.Minute)
	waitUntil(t, "joined", func() bool { return nc.State().Joined })
	f.srv.Close() // refuses the redials
	c.ws.Close(websocket.StatusGoingAway, "coordinator shutting down")
	waitUntil(t, "a refused redial", func() bool {
		s := nc.State()
		return !s.Joined && s.LastErr != nil && websocket.CloseStatus(s.LastErr) == -1 && strings.Count(logs.String(), "coordinator session ended") >= 2
	})
	if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("warned while the coordinator restarts:\n%s", out)
	}
}
