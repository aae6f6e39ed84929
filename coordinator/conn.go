package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// writeTimeout bounds one message write to a node.
const writeTimeout = 10 * time.Second

// nodeConn is one node's WebSocket session on this coordinator.
type nodeConn struct {
	c      *Coordinator
	ws     *websocket.Conn
	remote string
	log    *slog.Logger

	node     string // set once joined
	session  string
	operator string // whose credential it joined with

	welcomed chan struct{} // closed once the welcome is written

	pinMu sync.Mutex
	ready bool            // welcomed: pin orders may be sent
	sent  map[string]bool // roots ordered in this session, no answer yet

	stopCh   chan struct{}
	stopErr  error
	stopOnce sync.Once

	offerMu sync.Mutex
	offers  map[string]chan nodeproto.WebRTCAnswer // by offer id, awaiting answers

	watchMu sync.Mutex
	watch   map[string]bool // accounts whose state the node is pushed (MsgWatch, settlements)
}

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

func newNodeConn(c *Coordinator, ws *websocket.Conn, remoteAddr string) *nodeConn {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return &nodeConn{c: c, ws: ws, remote: host, log: c.log.With("remote", host), stopCh: make(chan struct{}), welcomed: make(chan struct{}), sent: make(map[string]bool)}
}

// stop ends the session with err (sent as the close reason).
func (n *nodeConn) stop(err error) {
	n.stopOnce.Do(func() {
		n.stopErr = err
		close(n.stopCh)
	})
}

func (n *nodeConn) run() {
	readCtx, cancelRead := context.WithCancel(context.Background())
	msgs := make(chan readResult)
	done := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			typ, data, err := n.ws.Read(readCtx)
			select {
			case msgs <- readResult{typ, data, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	err := n.serve(msgs)
	n.stop(err) // wakes offers waiting for an answer on this session
	var rerr *readError
	if errors.As(err, &rerr) {
		n.log.Debug("node connection ended", "node", n.node, "err", rerr.err)
		_ = n.ws.CloseNow()
	} else {
		code, reason := closeFor(err)
		lvl := slog.LevelInfo
		if code == websocket.StatusPolicyViolation || code == websocket.StatusInvalidFramePayloadData ||
			code == websocket.StatusProtocolError || code == websocket.StatusUnsupportedData {
			lvl = slog.LevelWarn
		}
		n.log.Log(context.Background(), lvl, "closing node connection", "node", n.node, "code", int(code), "reason", reason)
		_ = n.ws.Close(code, reason)
	}
	close(done)
	cancelRead()
	rwg.Wait()

	if n.node != "" {
		n.c.mu.Lock()
		if n.c.conns[n.node] == n {
			delete(n.c.conns, n.node)
		}
		n.c.mu.Unlock()
	}
}

// readError is a failure of the connection itself (peer gone, read limit).
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (n *nodeConn) next(msgs <-chan readResult, timeout <-chan time.Time, timeoutErr error) (nodeproto.Message, error) {
	select {
	case r := <-msgs:
		if r.err != nil {
			return nodeproto.Message{}, &readError{r.err}
		}
		if r.typ != websocket.MessageText {
			return nodeproto.Message{}, ErrBinary
		}
		var m nodeproto.Message
		if err := json.Unmarshal(r.data, &m); err != nil {
			return nodeproto.Message{}, fmt.Errorf("%w: not a JSON message", ErrMalformed)
		}
		return m, nil
	case <-timeout:
		return nodeproto.Message{}, timeoutErr
	case <-n.stopCh:
		return nodeproto.Message{}, n.stopErr
	case <-n.c.ctx.Done():
		return nodeproto.Message{}, ErrClosed
	}
}

// write sends m to the node. Anything but the handshake (challenge,
// welcome) waits for the welcome: the node is listed, and offers and
// reports may come for it, while it is still being admitted, and a node
// ends a session whose first message after its join is not the welcome.
func (n *nodeConn) write(m nodeproto.Message) error {
	ctx, cancel := context.WithTimeout(n.c.ctx, writeTimeout)
	defer cancel()
	if m.Type != nodeproto.MsgChallenge && m.Type != nodeproto.MsgWelcome {
		select {
		case <-n.welcomed:
		case <-n.stopCh:
			if n.stopErr != nil {
				return n.stopErr
			}
			return ErrClosed
		case <-ctx.Done():
			return &readError{ctx.Err()}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := n.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return &readError{err}
	}
	return nil
}

func (n *nodeConn) serve(msgs <-chan readResult) error {
	c := n.c
	ch := c.issueChallenge()
	// The join deadline starts with the challenge, before it is sent.
	timer := time.NewTimer(ch.Expires.Sub(c.cfg.Now()))
	defer timer.Stop()
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgChallenge, Challenge: &ch}); err != nil {
		return err
	}
	m, err := n.next(msgs, timer.C, ErrJoinTimeout)
	if err != nil {
		return err
	}
	if m.Type != nodeproto.MsgJoin || m.Join == nil {
		return fmt.Errorf("%w: expected %q, got %q", ErrProtocol, nodeproto.MsgJoin, clip(m.Type))
	}
	if err := c.verifyJoin(ch, m.Join); err != nil {
		return err
	}
	op, err := c.VerifyOperator(m.Join.Operator)
	if err != nil {
		return err
	}
	n.operator = op
	if err := c.cfg.URLProver.ProveURLs(c.ctx, m.Join.Record); err != nil {
		n.log.Warn("node URLs not proven", "node", m.Join.Node, "err", err)
		if !errors.Is(err, ErrURLProof) {
			err = fmt.Errorf("%w: %w", ErrURLProof, err)
		}
		return err
	}
	if err := n.admit(m.Join); err != nil {
		return err
	}
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgWelcome, Welcome: &nodeproto.Welcome{
		Node: n.node, Session: n.session, HeartbeatMS: c.cfg.HeartbeatInterval.Milliseconds(),
		Features: []string{nodeproto.FeatureRepair},
	}}); err != nil {
		return err
	}
	close(n.welcomed)
	n.pinMu.Lock()
	n.ready = true
	n.pinMu.Unlock()
	// The snapshot is taken after ready: a change pushed meanwhile is
	// also in it.
	if err := n.write(c.paymentsMessage(n, nil, true)); err != nil {
		return err
	}
	c.reconcile(n)
	// Only heartbeats and pin answers keep a node live: WebRTC answers do
	// not move the deadline.
	timer.Reset(c.cfg.deadline())
	for {
		m, err := n.next(msgs, timer.C, ErrHeartbeatTimeout)
		var rerr *readError
		switch {
		case errors.Is(err, ErrHeartbeatTimeout):
			c.markLost(c.ctx, n.node, n.session, "heartbeat timeout", false)
			return err
		case errors.As(err, &rerr):
			if s := websocket.CloseStatus(err); s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway {
				c.markLost(c.ctx, n.node, n.session, "node left", false)
			}
			return err
		case err != nil:
			return err
		}
		switch {
		case m.Type == nodeproto.MsgWebRTCAnswer && m.Answer != nil:
			if err := n.answer(m.Answer); err != nil {
				return err
			}
			continue
		case m.Type == nodeproto.MsgRepair && m.Repair != nil:
			if err := n.repair(m.Repair); err != nil {
				return err
			}
			continue
		case m.Type == nodeproto.MsgHeartbeat && m.Heartbeat != nil:
			if err := n.heartbeat(m.Heartbeat); err != nil {
				return err
			}
		case m.Type == nodeproto.MsgWatch && m.Watch != nil:
			if err := n.watchAccounts(m.Watch.Accounts); err != nil {
				return err
			}
		case m.Type == nodeproto.MsgSettle && m.Settle != nil:
			if err := n.settle(m.Settle); err != nil {
				return err
			}
		case m.Type == nodeproto.MsgPinned && m.Pinned != nil:
			// An answer to a pin order counts as a sign of life too.
			if err := n.pinned(m.Pinned); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: expected %q, %q or %q, got %q", ErrProtocol, nodeproto.MsgHeartbeat, nodeproto.MsgPinned, nodeproto.MsgWebRTCAnswer, clip(m.Type))
		}
		timer.Reset(c.cfg.deadline())
	}
}

func (c *Coordinator) issueChallenge() nodeproto.Challenge {
	ch := nodeproto.Challenge{Nonce: make([]byte, nodeproto.NonceSize), Coordinator: c.cfg.ID, Expires: c.cfg.Now().Add(c.cfg.ChallengeTTL).UTC()}
	_, _ = rand.Read(ch.Nonce)
	c.mu.Lock()
	c.issued[hex.EncodeToString(ch.Nonce)] = nonceState{expires: ch.Expires}
	c.mu.Unlock()
	return ch
}

// verifyJoin checks j against ch, the challenge issued on this connection,
// and consumes the challenge.
func (c *Coordinator) verifyJoin(ch nodeproto.Challenge, j *nodeproto.Join) error {
	now := c.cfg.Now()
	key := hex.EncodeToString(j.Challenge.Nonce)
	c.mu.Lock()
	ns, known := c.issued[key]
	if known && bytes.Equal(j.Challenge.Nonce, ch.Nonce) {
		c.issued[key] = nonceState{expires: ns.expires, used: true}
	}
	c.mu.Unlock()
	switch {
	case known && ns.used:
		return ErrChallengeReplayed
	case !bytes.Equal(j.Challenge.Nonce, ch.Nonce) || j.Challenge.Coordinator != ch.Coordinator || !j.Challenge.Expires.Equal(ch.Expires):
		return ErrChallengeMismatch
	case now.After(ch.Expires):
		return ErrChallengeExpired
	}
	if err := j.Record.Verify(now); err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	if j.Node != j.Record.Record.NodeID {
		return ErrNodeMismatch
	}
	if len(j.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(ed25519.PublicKey(j.Record.Record.PublicKey), nodeproto.JoinSigningBytes(ch, j.Node), j.Signature) {
		return ErrSignature
	}
	return nil
}

// admit records the joined node as live in a new session and emits
// node.joined.
func (n *nodeConn) admit(j *nodeproto.Join) error {
	c := n.c
	var sid [12]byte
	_, _ = rand.Read(sid[:])
	n.node, n.session = j.Node, hex.EncodeToString(sid[:])
	n.log = n.log.With("node", n.node, "session", n.session)
	now := c.cfg.Now().UTC()
	var status nodeproto.Heartbeat
	if j.Status != nil {
		status = storedStatus(*j.Status)
	}
	// The connection is reachable (offers, reports) before the state
	// that lists the node as live is stored: whoever learns of the
	// node from the bucket finds its connection here.
	c.mu.Lock()
	old := c.conns[n.node]
	c.conns[n.node] = n
	c.mu.Unlock()
	if old != nil {
		old.stop(ErrSuperseded)
	}
	_, _, err := c.updateState(c.ctx, n.node, func(cur *NodeState, _ bool) bool {
		*cur = NodeState{
			Record: j.Record, Status: status, State: StateLive,
			Coordinator: c.cfg.ID, Session: n.session, Addr: n.remote,
			Operator: n.operator, JoinedAt: now, LastSeen: now,
		}
		return true
	})
	if err != nil {
		c.mu.Lock()
		if c.conns[n.node] == n {
			delete(c.conns, n.node)
		}
		c.mu.Unlock()
		return fmt.Errorf("coordinator: storing node state: %w", err)
	}
	c.mu.Lock()
	_, stillValid := c.operators[n.operator]
	if !stillValid && c.conns[n.node] == n {
		delete(c.conns, n.node)
	}
	c.mu.Unlock()
	if !stillValid {
		// Revoked while it joined: revoked() did not see this session.
		c.markLost(c.ctx, n.node, n.session, "operator revoked", false)
		return fmt.Errorf("%w: operator %q was revoked", ErrOperator, n.operator)
	}
	n.log.Info("node joined", "operator", n.operator, "http", j.Record.Record.HTTP, "webtransport", j.Record.Record.WebTransport)
	c.emit(c.ctx, "node.joined/"+n.node+"/"+n.session, events.TypeNodeJoined, events.NodeJoined{
		Node: n.node, Coordinator: c.cfg.ID, Session: n.session, Addr: n.remote,
		HTTP: j.Record.Record.HTTP, WebTransport: j.Record.Record.WebTransport, Region: status.Region,
	})
	return nil
}

// storedStatus is a node's report as the registry keeps it: without its
// record (kept apart), and with its pending receipts bounded to
// nodeproto.MaxPendingAccounts valid account names. The pending figure is
// the node's claim, shown to its operator; nothing pays by it.
func storedStatus(hb nodeproto.Heartbeat) nodeproto.Heartbeat {
	hb.Record = nil
	if p := hb.Receipts; p != nil {
		clean := &nodeproto.PendingReceipts{Sessions: max(p.Sessions, 0), Bytes: p.Bytes}
		for a, b := range p.ByAccount {
			if payment.ValidAccount(a) {
				if clean.ByAccount == nil {
					clean.ByAccount = make(map[string]uint64)
				}
				clean.ByAccount[a] = b
			}
		}
		hb.Receipts = clean.Bounded()
	}
	return hb
}

func (n *nodeConn) heartbeat(hb *nodeproto.Heartbeat) error {
	c := n.c
	now := c.cfg.Now()
	rec := hb.Record
	if rec != nil {
		if err := rec.Verify(now); err != nil {
			return fmt.Errorf("%w: %w", ErrRecord, err)
		}
		if rec.Record.NodeID != n.node {
			return ErrNodeMismatch
		}
		if cur, ok := c.cachedState(n.node); ok && cur.Session == n.session &&
			(rec.Record.HTTP != cur.Record.Record.HTTP || rec.Record.WebTransport != cur.Record.Record.WebTransport) {
			// Only the URLs proven at join are listed: new ones need a
			// new session.
			return fmt.Errorf("%w: the record's URLs changed; join again to prove them", ErrURLProof)
		}
	}
	status := storedStatus(*hb)
	var endErr error
	_, _, err := c.updateState(c.ctx, n.node, func(cur *NodeState, exists bool) bool {
		endErr = nil
		switch {
		case !exists || cur.Session != n.session:
			endErr = ErrSuperseded
			return false
		case cur.State != StateLive:
			// Declared lost (e.g. by another coordinator): the node must
			// join again so the network hears about it.
			endErr = ErrHeartbeatTimeout
			return false
		}
		cur.LastSeen, cur.Status = now.UTC(), status
		if rec != nil {
			cur.Record = *rec
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("coordinator: storing heartbeat: %w", err)
	}
	return endErr
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
