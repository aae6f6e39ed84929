package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// CoordClientConfig configures a CoordClient. URL, Key and Record are
// required.
type CoordClientConfig struct {
	// URL of the coordinator: its base (http://127.0.0.1:8080,
	// nodeproto.ConnectPath is appended) or the full ws://, wss://, http:// or https:// URL of
	// the connect endpoint.
	URL string
	// Key is the node's ed25519 key; it signs challenges.
	Key ed25519.PrivateKey
	// Record returns the node's current signed record. It is sent on join
	// and again in the next heartbeat whenever it changes.
	Record func() (noderecord.Signed, error)
	// Status returns the node's current status for heartbeats (its Record
	// field is ignored). Default: an empty status.
	Status func() nodeproto.Heartbeat
	// Coordinator, when set, is the only coordinator id accepted in
	// challenges.
	Coordinator string
	// OnPin handles a pin order: fetch p.CAR, verify every block, store
	// and pin p.Root, returning nil once the node holds the whole DAG. It
	// runs in its own goroutine (orders may overlap); ctx ends with the
	// session. Its result is sent back as a Pinned message. Default: every
	// order is refused.
	OnPin func(ctx context.Context, p nodeproto.Pin) error
	// OnPlaced receives, once per session, every root the placements
	// assign to the node: it may drop other pins and collect their blocks.
	// It runs in its own goroutine. Default: ignored.
	OnPlaced func(ctx context.Context, roots []string)
	// OnReported receives the failures visitors reported about this node
	// (reason → count). It must not block. Optional.
	OnReported func(reasons map[string]int)
	// OnPayments receives the payment state the coordinator pushes
	// (gateway keys, account balances and freezes, node count). It must
	// not block. Optional.
	OnPayments func(p nodeproto.Payments)
	// HTTPClient dials the WebSocket. Default http.DefaultClient.
	HTTPClient *http.Client
	// Offers answers WebRTC offers relayed by the coordinator; an error
	// that is a *nodeproto.OfferError keeps its code. Default: offers are
	// refused with nodeproto.OfferCodeDisabled.
	Offers func(ctx context.Context, sdp string) (string, error)
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// (with jitter) after each failed session. Defaults 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger default slog.Default().
	Logger *slog.Logger
}

// CoordClient keeps a node joined to a coordinator: it connects, answers the
// challenge with the node key, heartbeats, carries out the coordinator's
// orders, and reconnects with backoff until Close. Run uses one when
// Config.Coordinator is set; tests of the coordinator use one as a node
// without storage.
type CoordClient struct {
	cfg CoordClientConfig
	url string
	log *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu    sync.Mutex
	state CoordClientState

	settles chan settleCall // to the session loop
}

type settleCall struct {
	batch nodeproto.Batch
	reply chan settleReply // buffered 1
}

type settleReply struct {
	s   nodeproto.Settled
	err error
}

// CoordClientState is a snapshot of a CoordClient.
type CoordClientState struct {
	Joined  bool   // a session is up
	Session string // current or last session id
	Joins   int    // sessions established so far
	LastErr error  // why the last session ended or failed
}

// NewCoordClient validates cfg and starts the client. Errors wrap
// ErrConfig.
func NewCoordClient(cfg CoordClientConfig) (*CoordClient, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, &ConfigError{Field: "CoordClientConfig.Key", Reason: "not an ed25519 private key"}
	}
	if cfg.Record == nil {
		return nil, &ConfigError{Field: "CoordClientConfig.Record", Reason: "required"}
	}
	u, err := connectURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Status == nil {
		cfg.Status = func() nodeproto.Heartbeat { return nodeproto.Heartbeat{} }
	}
	if cfg.OnPin == nil {
		cfg.OnPin = func(context.Context, nodeproto.Pin) error { return errors.New("this node does not pin") }
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &CoordClient{
		cfg: cfg, url: u, cancel: cancel, done: make(chan struct{}),
		log:     cfg.Logger.With("component", "coordinator-client", "coordinator", u),
		settles: make(chan settleCall),
	}
	go n.run(ctx)
	return n, nil
}

func connectURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", &ConfigError{Field: "CoordClientConfig.URL", Reason: fmt.Sprintf("bad coordinator URL %q", raw)}
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", &ConfigError{Field: "CoordClientConfig.URL", Reason: fmt.Sprintf("bad coordinator URL scheme %q", u.Scheme)}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = nodeproto.ConnectPath
	}
	return u.String(), nil
}

// State returns a snapshot of the client's state.
func (n *CoordClient) State() CoordClientState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Settle submits a settlement batch through the current session and
// waits for the coordinator's answer. It fails with ErrNoPayments when the
// coordinator has not announced payments, with ErrSessionEnded when the
// connection ended before the answer (the batch may or may not have been
// applied; settlement is idempotent, so submit it again), and with
// ErrClosed after Close.
func (n *CoordClient) Settle(ctx context.Context, b nodeproto.Batch) (nodeproto.Settled, error) {
	call := settleCall{batch: b, reply: make(chan settleReply, 1)}
	select {
	case n.settles <- call:
	case <-ctx.Done():
		return nodeproto.Settled{}, ctx.Err()
	case <-n.done:
		return nodeproto.Settled{}, ErrClosed
	}
	select {
	case r := <-call.reply:
		return r.s, r.err
	case <-ctx.Done():
		return nodeproto.Settled{}, ctx.Err()
	}
}

// Close leaves the coordinator (a normal closure, which it records as the
// node leaving) and stops reconnecting. It is idempotent.
func (n *CoordClient) Close() error {
	n.once.Do(func() {
		n.cancel()
		<-n.done
	})
	return nil
}

func (n *CoordClient) run(ctx context.Context) {
	defer close(n.done)
	delay := n.cfg.MinBackoff
	for {
		joined, err := n.session(ctx)
		n.mu.Lock()
		n.state.Joined = false
		n.state.LastErr = err
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if joined {
			delay = n.cfg.MinBackoff
		}
		n.log.Warn("coordinator session ended", "err", err, "retryIn", delay)
		// Jitter in [delay/2, delay).
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, n.cfg.MaxBackoff)
	}
}

// session runs one connection; joined reports whether the join succeeded.
func (n *CoordClient) session(ctx context.Context) (joined bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ws, _, err := websocket.Dial(dctx, n.url, &websocket.DialOptions{HTTPClient: n.cfg.HTTPClient})
	cancel()
	if err != nil {
		return false, err
	}
	ws.SetReadLimit(8 << 20) // a Placed list names every root placed here
	defer ws.CloseNow()

	// One reader for the whole session: it also processes control frames.
	msgs := make(chan readResult)
	rctx, rcancel := context.WithCancel(context.Background())
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			typ, data, err := ws.Read(rctx)
			select {
			case msgs <- readResult{typ, data, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		rcancel()
		rwg.Wait()
	}()
	recv := func(timeout time.Duration) (nodeproto.Message, error) {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case r := <-msgs:
			if r.err != nil {
				return nodeproto.Message{}, r.err
			}
			var m nodeproto.Message
			if err := json.Unmarshal(r.data, &m); err != nil {
				return nodeproto.Message{}, fmt.Errorf("%w: malformed message", ErrCoordinatorProtocol)
			}
			return m, nil
		case <-t.C:
			return nodeproto.Message{}, errors.New("node: no answer from coordinator")
		case <-ctx.Done():
			return nodeproto.Message{}, ctx.Err()
		}
	}
	send := func(m nodeproto.Message) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, coordWriteTimeout)
		defer cancel()
		return ws.Write(wctx, websocket.MessageText, b)
	}
	leave := func(err error) (bool, error) {
		if ctx.Err() != nil {
			_ = ws.Close(websocket.StatusNormalClosure, "node shutting down")
			return joined, ctx.Err()
		}
		return joined, err
	}

	m, err := recv(30 * time.Second)
	if err != nil {
		return leave(err)
	}
	if m.Type != nodeproto.MsgChallenge || m.Challenge == nil {
		return leave(fmt.Errorf("%w: expected challenge, got %q", ErrCoordinatorProtocol, clip(m.Type)))
	}
	ch := *m.Challenge
	if n.cfg.Coordinator != "" && ch.Coordinator != n.cfg.Coordinator {
		return leave(fmt.Errorf("node: challenge from coordinator %q, want %q", clip(ch.Coordinator), n.cfg.Coordinator))
	}
	rec, err := n.cfg.Record()
	if err != nil {
		return leave(fmt.Errorf("node: node record: %w", err))
	}
	node := noderecord.NodeIDFromKey(n.cfg.Key.Public().(ed25519.PublicKey))
	status := n.cfg.Status()
	status.Record = nil
	if err := send(nodeproto.Message{Type: nodeproto.MsgJoin, Join: &nodeproto.Join{
		Node: node, Challenge: ch, Record: rec, Status: &status,
		Signature: ed25519.Sign(n.cfg.Key, nodeproto.JoinSigningBytes(ch, node)),
	}}); err != nil {
		return leave(err)
	}
	m, err = recv(30 * time.Second)
	if err != nil {
		return leave(err)
	}
	if m.Type != nodeproto.MsgWelcome || m.Welcome == nil {
		return leave(fmt.Errorf("%w: expected welcome, got %q", ErrCoordinatorProtocol, clip(m.Type)))
	}
	joined = true
	n.mu.Lock()
	n.state.Joined, n.state.Session, n.state.LastErr = true, m.Welcome.Session, nil
	n.state.Joins++
	n.mu.Unlock()
	n.log.Info("joined coordinator", "session", m.Welcome.Session)

	interval := time.Duration(m.Welcome.HeartbeatMS) * time.Millisecond
	if interval <= 0 {
		interval = 10 * time.Second
	}
	lastSig := rec.Signature
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Pin orders run concurrently; their answers come back through results
	// so that this loop stays the only writer.
	pctx, pcancel := context.WithCancel(ctx)
	results := make(chan nodeproto.Pinned)
	var pwg sync.WaitGroup
	defer func() {
		pcancel()
		pwg.Wait()
	}()
	offers := newOfferAnswerer(ctx, n.cfg.Offers, send)
	defer offers.wait()
	var (
		payments bool // the coordinator announced payments
		settleID uint64
		pending  = make(map[uint64]chan settleReply)
	)
	defer func() {
		for _, r := range pending {
			r <- settleReply{err: ErrSessionEnded}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return leave(nil)
		case call := <-n.settles:
			if !payments {
				call.reply <- settleReply{err: ErrNoPayments}
				continue
			}
			settleID++
			if err := send(nodeproto.Message{Type: nodeproto.MsgSettle, Settle: &nodeproto.Settle{ID: settleID, Batch: call.batch}}); err != nil {
				call.reply <- settleReply{err: ErrSessionEnded}
				return leave(err)
			}
			pending[settleID] = call.reply
		case r := <-msgs:
			if r.err != nil {
				return leave(r.err)
			}
			var m nodeproto.Message
			if err := json.Unmarshal(r.data, &m); err != nil {
				return leave(fmt.Errorf("%w: malformed message", ErrCoordinatorProtocol))
			}
			if m.Type == nodeproto.MsgWebRTCOffer && m.Offer != nil {
				offers.handle(*m.Offer)
				continue
			}
			if m.Type == nodeproto.MsgPlaced && m.Placed != nil && n.cfg.OnPlaced != nil {
				roots := m.Placed.Roots
				pwg.Go(func() { n.cfg.OnPlaced(pctx, roots) })
				continue
			}
			if m.Type == nodeproto.MsgPayments && m.Payments != nil {
				payments = true
				if n.cfg.OnPayments != nil {
					n.cfg.OnPayments(*m.Payments)
				}
				continue
			}
			if m.Type == nodeproto.MsgSettled && m.Settled != nil {
				if r, ok := pending[m.Settled.ID]; ok {
					delete(pending, m.Settled.ID)
					r <- settleReply{s: *m.Settled}
				}
				continue
			}
			if m.Type == nodeproto.MsgReported && m.Reported != nil {
				if n.cfg.OnReported != nil {
					n.cfg.OnReported(m.Reported.Reasons)
				}
				continue
			}
			if m.Type != nodeproto.MsgPin || m.Pin == nil {
				n.log.Debug("ignoring coordinator message", "type", clip(m.Type))
				continue
			}
			p := *m.Pin
			pwg.Go(func() {
				res := nodeproto.Pinned{Root: p.Root}
				if err := n.cfg.OnPin(pctx, p); err != nil {
					res.Error = err.Error()
				}
				select {
				case results <- res:
				case <-pctx.Done():
				}
			})
		case res := <-results:
			if err := send(nodeproto.Message{Type: nodeproto.MsgPinned, Pinned: &res}); err != nil {
				return leave(err)
			}
			// The node's status changed (blocks, free disk): report it now.
			hb := n.cfg.Status()
			hb.Record = nil
			if err := send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &hb}); err != nil {
				return leave(err)
			}
		case <-tick.C:
			hb := n.cfg.Status()
			hb.Record = nil
			if cur, err := n.cfg.Record(); err == nil && !bytes.Equal(cur.Signature, lastSig) {
				hb.Record = &cur
				lastSig = cur.Signature
			}
			if err := send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &hb}); err != nil {
				return leave(err)
			}
		}
	}
}

// coordWriteTimeout bounds one message write to the coordinator.
const coordWriteTimeout = 10 * time.Second

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// clip shortens a peer-supplied string for errors and logs.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
