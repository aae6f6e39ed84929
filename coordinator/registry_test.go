package coordinator_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

func TestJoinHeartbeatLeave(t *testing.T) {
	e := newEnv(t, nil)
	evs := nodeEvents(t, e.bus, "join-test")
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	// A rotation signs a new record (new certificates) for the same URLs.
	rotated := signedRecord(t, k, 4001)
	rotated.Record.Issued = rotated.Record.Issued.Add(time.Second)
	rotated, err := noderecord.Sign(rotated.Record, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	var useRotated atomic.Bool
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL:           e.srv.url,
		Key:           k.priv,
		OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) {
			if useRotated.Load() {
				return rotated, nil
			}
			return rec, nil
		},
		Status: func() nodeproto.Heartbeat {
			return nodeproto.Heartbeat{Capacity: 1 << 30, FreeDisk: 1 << 29, Load: 0.25, Version: "v-test", Region: "NL", Record: nil}
		},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	ev := nextEvent(t, evs)
	var joined events.NodeJoined
	if err := ev.Decode(&joined); err != nil || ev.Type != events.TypeNodeJoined || joined.Node != k.id ||
		joined.Coordinator != e.coord.ID() || joined.Addr != "127.0.0.1" || joined.HTTP != "http://127.0.0.1:4001" {
		t.Fatalf("join event %s %+v %v", ev.Type, joined, err)
	}
	eventually(t, "node listed", func() bool { return hasNode(t, e.coord, k.id) })
	eventually(t, "client joined", func() bool { return nc.State().Joined })
	st, _ := stateOf(t, e.coord, k.id)
	if st.State != coordinator.StateLive || st.Session != joined.Session || st.Status.Version != "v-test" || nc.State().Session != joined.Session {
		t.Fatalf("state %+v, client %+v", st, nc.State())
	}
	first := st.LastSeen
	eventually(t, "heartbeats", func() bool {
		s, _ := stateOf(t, e.coord, k.id)
		return s.LastSeen.After(first) && s.Status.Capacity == 1<<30 && s.Status.Load == 0.25
	})

	// A rotated record reaches the registry with the next heartbeat.
	useRotated.Store(true)
	eventually(t, "rotated record", func() bool {
		s, _ := stateOf(t, e.coord, k.id)
		return bytes.Equal(s.Record.Signature, rotated.Signature)
	})
	// Still one session: heartbeats do not re-join.
	if n := nc.State().Joins; n != 1 {
		t.Fatalf("joins = %d", n)
	}

	// Leaving: the node is lost at once, with its reason.
	nc.Close()
	ev = nextEvent(t, evs)
	var lost events.NodeLost
	if err := ev.Decode(&lost); err != nil || ev.Type != events.TypeNodeLost || lost.Node != k.id || lost.Session != joined.Session || lost.Reason != "node left" {
		t.Fatalf("lost event %s %+v %v", ev.Type, lost, err)
	}
	eventually(t, "node unlisted", func() bool { return !hasNode(t, e.coord, k.id) })
	if s, _ := stateOf(t, e.coord, k.id); s.State != coordinator.StateLost || s.Reason != "node left" {
		t.Fatalf("state after leave %+v", s)
	}
}

func TestMissedHeartbeatsLost(t *testing.T) {
	e := newEnv(t, nil)
	evs := nodeEvents(t, e.bus, "lost-test")
	k := newKey(t)
	r := dialRaw(t, e.wsURL())
	r.send(joinFor(r.ch, k, signedRecord(t, k, 4001)))
	if m := r.read(); m.Type != nodeproto.MsgWelcome || m.Welcome.Node != k.id || m.Welcome.HeartbeatMS != 50 {
		t.Fatalf("welcome = %+v", m)
	}
	if ev := nextEvent(t, evs); ev.Type != events.TypeNodeJoined {
		t.Fatalf("got %s", ev.Type)
	}
	// One heartbeat, then silence.
	r.send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &nodeproto.Heartbeat{Version: "raw"}})
	ce := r.closed()
	if ce.Code != coordinator.StatusHeartbeatTimeout {
		t.Fatalf("close = %v, want heartbeat timeout", ce)
	}
	ev := nextEvent(t, evs)
	var lost events.NodeLost
	if err := ev.Decode(&lost); err != nil || ev.Type != events.TypeNodeLost || lost.Reason != "heartbeat timeout" || lost.Coordinator != e.coord.ID() {
		t.Fatalf("lost event %s %+v %v", ev.Type, lost, err)
	}
	if hasNode(t, e.coord, k.id) {
		t.Fatal("lost node still listed")
	}
}

// A node whose connection drops without a close frame is lost once its
// heartbeats are overdue, by the monitor.
func TestDroppedConnectionLost(t *testing.T) {
	e := newEnv(t, nil)
	evs := nodeEvents(t, e.bus, "drop-test")
	k := newKey(t)
	r := dialRaw(t, e.wsURL())
	r.send(joinFor(r.ch, k, signedRecord(t, k, 4001)))
	r.read()
	nextEvent(t, evs)
	r.ws.CloseNow()
	ev := nextEvent(t, evs)
	var lost events.NodeLost
	if err := ev.Decode(&lost); err != nil || ev.Type != events.TypeNodeLost || lost.Reason != "heartbeat timeout" {
		t.Fatalf("lost event %s %+v %v", ev.Type, lost, err)
	}
}

func TestRefusedJoins(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) { c.ChallengeTTL = 2 * time.Second })
	good := newKey(t)
	other := newKey(t)
	goodRec := signedRecord(t, good, 4001)
	otherRec := signedRecord(t, other, 4101)
	expired := func() noderecord.Signed {
		now := time.Now()
		s, err := noderecord.Sign(noderecord.Record{HTTP: "http://127.0.0.1:1", Issued: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}, good.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tampered := goodRec
	tampered.Record.HTTP = "http://127.0.0.1:6666"

	cases := []struct {
		name   string
		msg    func(ch nodeproto.Challenge) nodeproto.Message
		code   websocket.StatusCode
		reason string
	}{
		{"forged signature", func(ch nodeproto.Challenge) nodeproto.Message {
			m := joinFor(ch, good, goodRec)
			m.Join.Signature = ed25519Sign(other, nodeproto.JoinSigningBytes(ch, good.id))
			return m
		}, websocket.StatusPolicyViolation, coordinator.ErrSignature.Error()},
		{"signature over another challenge", func(ch nodeproto.Challenge) nodeproto.Message {
			m := joinFor(ch, good, goodRec)
			ch2 := ch
			ch2.Nonce = make([]byte, 32)
			m.Join.Signature = ed25519Sign(good, nodeproto.JoinSigningBytes(ch2, good.id))
			return m
		}, websocket.StatusPolicyViolation, coordinator.ErrSignature.Error()},
		{"record for another key", func(ch nodeproto.Challenge) nodeproto.Message {
			return joinFor(ch, good, otherRec)
		}, websocket.StatusPolicyViolation, coordinator.ErrNodeMismatch.Error()},
		{"claiming another node", func(ch nodeproto.Challenge) nodeproto.Message {
			m := joinFor(ch, good, otherRec)
			m.Join.Node = other.id // signed by good's key, not other's
			return m
		}, websocket.StatusPolicyViolation, coordinator.ErrSignature.Error()},
		{"tampered record", func(ch nodeproto.Challenge) nodeproto.Message {
			return joinFor(ch, good, tampered)
		}, websocket.StatusPolicyViolation, coordinator.ErrRecord.Error()},
		{"expired record", func(ch nodeproto.Challenge) nodeproto.Message {
			return joinFor(ch, good, expired)
		}, websocket.StatusPolicyViolation, coordinator.ErrRecord.Error()},
		{"altered challenge expiry", func(ch nodeproto.Challenge) nodeproto.Message {
			ch.Expires = ch.Expires.Add(time.Hour)
			return joinFor(ch, good, goodRec)
		}, websocket.StatusPolicyViolation, coordinator.ErrChallengeMismatch.Error()},
		{"made-up challenge", func(ch nodeproto.Challenge) nodeproto.Message {
			ch.Nonce = make([]byte, 32)
			return joinFor(ch, good, goodRec)
		}, websocket.StatusPolicyViolation, coordinator.ErrChallengeMismatch.Error()},
		{"heartbeat before join", func(nodeproto.Challenge) nodeproto.Message {
			return nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &nodeproto.Heartbeat{}}
		}, websocket.StatusProtocolError, "expected \"join\""},
		{"join without body", func(nodeproto.Challenge) nodeproto.Message {
			return nodeproto.Message{Type: nodeproto.MsgJoin}
		}, websocket.StatusProtocolError, "expected \"join\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, e.wsURL())
			r.send(c.msg(r.ch))
			ce := r.closed()
			if ce.Code != c.code || !strings.Contains(ce.Reason, c.reason) {
				t.Fatalf("close = %d %q, want %d containing %q", ce.Code, ce.Reason, c.code, c.reason)
			}
			if hasNode(t, e.coord, good.id) || hasNode(t, e.coord, other.id) {
				t.Fatal("refused node listed")
			}
		})
	}
}

func TestReplayedChallengeRefused(t *testing.T) {
	e := newEnv(t, nil)
	k := newKey(t)
	r1 := dialRaw(t, e.wsURL())
	join := joinFor(r1.ch, k, signedRecord(t, k, 4001))
	r1.send(join)
	if m := r1.read(); m.Type != nodeproto.MsgWelcome {
		t.Fatalf("first join: %+v", m)
	}
	// The captured join, replayed on a new connection.
	r2 := dialRaw(t, e.wsURL())
	r2.send(join)
	ce := r2.closed()
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != coordinator.ErrChallengeReplayed.Error() {
		t.Fatalf("replay close = %d %q", ce.Code, ce.Reason)
	}
	// The first session is unaffected.
	r1.send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &nodeproto.Heartbeat{Version: "still-here"}})
	eventually(t, "heartbeat of first session", func() bool {
		s, _ := stateOf(t, e.coord, k.id)
		return s.Status.Version == "still-here"
	})
}

func TestExpiredChallengeRefused(t *testing.T) {
	var offset atomic.Int64
	e := newEnv(t, func(c *coordinator.Config) {
		c.ChallengeTTL = time.Minute
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	k := newKey(t)
	r := dialRaw(t, e.wsURL())
	offset.Store(int64(2 * time.Minute)) // the answer comes after the expiry
	r.send(joinFor(r.ch, k, signedRecord(t, k, 4001)))
	ce := r.closed()
	if ce.Code != websocket.StatusPolicyViolation || ce.Reason != coordinator.ErrChallengeExpired.Error() {
		t.Fatalf("close = %d %q", ce.Code, ce.Reason)
	}
}

func TestNoJoinTimeout(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) { c.ChallengeTTL = 100 * time.Millisecond })
	r := dialRaw(t, e.wsURL())
	if ce := r.closed(); ce.Code != coordinator.StatusJoinTimeout {
		t.Fatalf("close = %v", ce)
	}
}

func TestMalformedMessagesRefused(t *testing.T) {
	e := newEnv(t, nil)
	k := newKey(t)
	other := newKey(t)
	joined := func(t *testing.T) *raw {
		r := dialRaw(t, e.wsURL())
		r.send(joinFor(r.ch, k, signedRecord(t, k, 4001)))
		if m := r.read(); m.Type != nodeproto.MsgWelcome {
			t.Fatalf("join: %+v", m)
		}
		return r
	}
	otherRec := signedRecord(t, other, 4101)
	cases := []struct {
		name      string
		afterJoin bool
		typ       websocket.MessageType
		body      []byte
		code      websocket.StatusCode
		reason    string
	}{
		{"not JSON", false, websocket.MessageText, []byte("{nope"), websocket.StatusInvalidFramePayloadData, "malformed"},
		{"binary", false, websocket.MessageBinary, []byte{1, 2, 3}, websocket.StatusUnsupportedData, "binary"},
		{"oversized", false, websocket.MessageText, []byte(`{"type":"join","x":"` + strings.Repeat("a", 20<<10) + `"}`), websocket.StatusMessageTooBig, "read limited"},
		{"oversized after join", true, websocket.MessageText, []byte(`{"type":"heartbeat","x":"` + strings.Repeat("a", 20<<10) + `"}`), websocket.StatusMessageTooBig, "read limited"},
		{"not JSON after join", true, websocket.MessageText, []byte("]]"), websocket.StatusInvalidFramePayloadData, "malformed"},
		{"unknown type after join", true, websocket.MessageText, []byte(`{"type":"gimme"}`), websocket.StatusProtocolError, "expected \"heartbeat\""},
		{"heartbeat with another node's record", true, websocket.MessageText, mustJSON(t, nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &nodeproto.Heartbeat{Record: &otherRec}}), websocket.StatusPolicyViolation, coordinator.ErrNodeMismatch.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *raw
			if c.afterJoin {
				r = joined(t)
			} else {
				r = dialRaw(t, e.wsURL())
			}
			r.sendBytes(c.typ, c.body)
			ce := r.closed()
			if ce.Code != c.code || !strings.Contains(ce.Reason, c.reason) {
				t.Fatalf("close = %d %q, want %d containing %q", ce.Code, ce.Reason, c.code, c.reason)
			}
		})
	}
}

func TestNewSessionSupersedesOld(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) { c.HeartbeatInterval = time.Second })
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	r1 := dialRaw(t, e.wsURL())
	r1.send(joinFor(r1.ch, k, rec))
	w1 := r1.read().Welcome
	r2 := dialRaw(t, e.wsURL())
	r2.send(joinFor(r2.ch, k, rec))
	w2 := r2.read().Welcome
	if w1.Session == w2.Session {
		t.Fatal("same session twice")
	}
	if ce := r1.closed(); ce.Code != coordinator.StatusSuperseded {
		t.Fatalf("old session close = %v", ce)
	}
	s, _ := stateOf(t, e.coord, k.id)
	if s.Session != w2.Session || s.State != coordinator.StateLive {
		t.Fatalf("state %+v", s)
	}
}

func ed25519Sign(k nodeKey, msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A coordinator keeps watching the nodes bucket after the context given to
// New ends: it sees nodes that joined another coordinator on the bus later.
func TestWatchOutlivesNewContext(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	other, err := coordinator.New(ctx, coordinator.Config{Bus: e.bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, Logger: testLogger(t)})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		MinBackoff: 10 * time.Millisecond,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "the node listed by the other coordinator", func() bool { return hasNode(t, other, k.id) })
}
