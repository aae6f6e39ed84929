package node

import (
	"context"
	"crypto/ed25519"
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

// Timeouts of a coordinator session.
const (
	coordDialTimeout  = 30 * time.Second // dialing the WebSocket
	coordJoinTimeout  = 30 * time.Second // each of challenge and welcome
	coordWriteTimeout = 10 * time.Second // one message write
	// coordReadLimit bounds one message from the coordinator: a placed
	// list names every root placed on the node.
	coordReadLimit = 8 << 20
	// defaultHeartbeat is used when welcome names no interval.
	defaultHeartbeat = 10 * time.Second
)

// CoordClientConfig configures a CoordClient. URL, Key and Record are
// required.
type CoordClientConfig struct {
	// URL of the coordinator: its base (http://127.0.0.1:8080,
	// nodeproto.ConnectPath is appended) or the full ws://, wss://,
	// http:// or https:// URL of the connect endpoint.
	URL string
	// Key is the node's ed25519 key; it signs challenges.
	Key ed25519.PrivateKey
	// OperatorToken is the operator's credential sent with each join
	// ("vop_NAME.SECRET"). A coordinator refuses a join without a valid
	// one (nodeproto.CloseOperatorRefused); the client logs why, at error
	// level, and keeps retrying at MaxBackoff.
	OperatorToken string
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
	// session. Its result is sent back as a pinned message. Default: every
	// order is refused.
	OnPin func(ctx context.Context, p nodeproto.Pin) error
	// OnPlaced is called once per session with placed, which reports
	// whether a root is placed on the node: it may drop other pins and
	// collect their blocks. The coordinator's list is a snapshot taken as
	// the node was welcomed, and a pin order can cross it (sent before it,
	// or handled after it), so placed also holds every root ordered in
	// this session, whenever the order came. It runs in its own
	// goroutine. Default: ignored.
	OnPlaced func(ctx context.Context, placed func(root string) bool)
	// OnUnpin is called when the coordinator no longer places root on the
	// node (its copy went to another node, or it was collected): it may
	// drop the pin and collect its blocks, unless ordered reports true,
	// which it does once a pin order for root has come after the unpin
	// (root placed again here). It runs in its own goroutine, as pin
	// orders do, so a later order's may run first: ordered is to be asked
	// with the pins held, as Node.UnpinUnless does. Default: ignored.
	OnUnpin func(ctx context.Context, root string, ordered func() bool)
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

// CoordClient keeps a node joined to a coordinator: it connects, answers
// the challenge with the node key, heartbeats, carries out the
// coordinator's orders, and reconnects with backoff until Close. Run uses
// one when Config.Coordinator is set; tests of the coordinator use it as
// a node without storage.
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
	repairs chan repairCall // to the session loop
	watches chan []string   // MsgWatch to send, to the session loop
}

type repairCall struct {
	cid   string
	reply chan repairReply // buffered 1
}

type repairReply struct {
	sources []string
	grant   string
	err     error
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
	c := &CoordClient{
		cfg: cfg, url: u, cancel: cancel, done: make(chan struct{}),
		log:     cfg.Logger.With("component", "coordinator-client", "coordinator", u),
		settles: make(chan settleCall),
		repairs: make(chan repairCall),
		watches: make(chan []string, 64),
	}
	go c.run(ctx)
	return c, nil
}

// connectURL turns a coordinator URL into the WebSocket URL of its
// connect endpoint.
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
func (c *CoordClient) State() CoordClientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Settle submits a settlement batch through the current session and
// waits for the coordinator's answer. It fails with ErrNoPayments when the
// coordinator has not announced payments, with ErrSessionEnded when the
// connection ended before the answer (the batch may or may not have been
// applied; settlement is idempotent, so submit it again), and with
// ErrClosed after Close.
func (c *CoordClient) Settle(ctx context.Context, b nodeproto.Batch) (nodeproto.Settled, error) {
	call := settleCall{batch: b, reply: make(chan settleReply, 1)}
	select {
	case c.settles <- call:
	case <-ctx.Done():
		return nodeproto.Settled{}, ctx.Err()
	case <-c.done:
		return nodeproto.Settled{}, ErrClosed
	}
	select {
	case r := <-call.reply:
		return r.s, r.err
	case <-ctx.Done():
		return nodeproto.Settled{}, ctx.Err()
	}
}

// RepairSources asks the coordinator where to fetch block c again (the
// HTTP base URLs of other holders), and for the grant to fetch it from
// them (nodeproto.RepairSources.Grant; "" from a coordinator without a
// request key). It fails with ErrSessionEnded when the
// session ended before the answer or the coordinator does not take repair
// requests, and with ErrClosed after Close.
func (c *CoordClient) RepairSources(ctx context.Context, cid string) (sources []string, grant string, err error) {
	call := repairCall{cid: cid, reply: make(chan repairReply, 1)}
	select {
	case c.repairs <- call:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	case <-c.done:
		return nil, "", ErrClosed
	}
	select {
	case r := <-call.reply:
		return r.sources, r.grant, r.err
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// Watch asks the coordinator to push the state of accounts (those the
// node serves) from now on (MsgWatch). It does not wait: without a session
// the request is dropped, and the node asks again for every account it
// serves when a session's first payments message arrives.
func (c *CoordClient) Watch(accounts []string) {
	select {
	case c.watches <- accounts:
	default:
	}
}

// Close leaves the coordinator (a normal closure, which it records as the
// node leaving) and stops reconnecting. It is idempotent.
func (c *CoordClient) Close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
	return nil
}

// restartGrace is how long after a coordinator said it was going away
// failing to reconnect is logged as routine (Info) rather than a warning.
const restartGrace = 30 * time.Second

func (c *CoordClient) run(ctx context.Context) {
	defer close(c.done)
	delay := c.cfg.MinBackoff
	var awaySince time.Time // when the coordinator last said it was going away
	for {
		joined, err := c.session(ctx)
		c.mu.Lock()
		c.state.Joined = false
		c.state.LastErr = err
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if joined {
			delay = c.cfg.MinBackoff
			awaySince = time.Time{}
		}
		if errors.Is(err, ErrOperatorRefused) {
			// Retrying soon will not help: the operator must act.
			delay = c.cfg.MaxBackoff
			c.log.Error("the coordinator refused this node's operator credential: get one from the gateway's admin (verity operators create NAME) and pass it with --operator-token-file or VERITY_OPERATOR_TOKEN",
				"err", err, "retryIn", delay)
		} else {
			// A coordinator that goes away (its gateway stops or
			// restarts) is routine: the node reconnects, and the
			// refused dials while it restarts (restartGrace) are too.
			// Anything else is worth a warning.
			lvl := slog.LevelWarn
			if websocket.CloseStatus(err) == websocket.StatusGoingAway {
				awaySince = time.Now()
			}
			if !awaySince.IsZero() && time.Since(awaySince) < restartGrace {
				lvl = slog.LevelInfo
			}
			c.log.Log(ctx, lvl, "coordinator session ended", "err", err, "retryIn", delay)
		}
		// Jitter in [delay/2, delay).
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, c.cfg.MaxBackoff)
	}
}

// session runs one connection: the handshake, then the session's messages
// until either side ends it. joined reports whether the join succeeded.
func (c *CoordClient) session(ctx context.Context) (joined bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, coordDialTimeout)
	ws, _, err := websocket.Dial(dctx, c.url, &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient})
	cancel()
	if err != nil {
		return false, err
	}
	ws.SetReadLimit(coordReadLimit)
	conn := newCoordConn(ws)
	defer conn.close()

	w, rec, err := c.handshake(ctx, conn)
	if err != nil {
		return false, conn.leave(ctx, err)
	}
	c.mu.Lock()
	c.state.Joined, c.state.Session, c.state.LastErr = true, w.Session, nil
	c.state.Joins++
	c.mu.Unlock()
	c.log.Info("joined coordinator", "session", w.Session)
	return true, c.serve(ctx, conn, w, rec)
}

// handshake answers the coordinator's challenge with a join signed by the
// node key and waits for the welcome. It returns the welcome and the
// record sent with the join.
func (c *CoordClient) handshake(ctx context.Context, conn *coordConn) (w nodeproto.Welcome, rec noderecord.Signed, err error) {
	m, err := conn.recv(ctx, coordJoinTimeout)
	if err != nil {
		return w, rec, err
	}
	if m.Type != nodeproto.MsgChallenge || m.Challenge == nil {
		return w, rec, fmt.Errorf("%w: expected challenge, got %q", ErrCoordinatorProtocol, clip(m.Type))
	}
	ch := *m.Challenge
	if c.cfg.Coordinator != "" && ch.Coordinator != c.cfg.Coordinator {
		return w, rec, fmt.Errorf("node: challenge from coordinator %q, want %q", clip(ch.Coordinator), c.cfg.Coordinator)
	}
	rec, err = c.cfg.Record()
	if err != nil {
		return w, rec, fmt.Errorf("node: node record: %w", err)
	}
	node := noderecord.NodeIDFromKey(c.cfg.Key.Public().(ed25519.PublicKey))
	status := c.cfg.Status()
	status.Record = nil
	if err := conn.send(ctx, nodeproto.Message{Type: nodeproto.MsgJoin, Join: &nodeproto.Join{
		Node: node, Challenge: ch, Record: rec, Status: &status,
		Signature: ed25519.Sign(c.cfg.Key, nodeproto.JoinSigningBytes(ch, node)),
		Operator:  c.cfg.OperatorToken,
	}}); err != nil {
		return w, rec, err
	}
	m, err = conn.recv(ctx, coordJoinTimeout)
	if err != nil {
		return w, rec, err
	}
	if m.Type != nodeproto.MsgWelcome || m.Welcome == nil {
		return w, rec, fmt.Errorf("%w: expected welcome, got %q", ErrCoordinatorProtocol, clip(m.Type))
	}
	return *m.Welcome, rec, nil
}

// serve runs a welcomed session until ctx ends or the connection fails:
// heartbeats, settlements the node submits, and the coordinator's
// messages, dispatched by coordSession.handle. It leaves before it waits
// for the session's pin orders and offers, so the coordinator stops
// routing to the node first.
func (c *CoordClient) serve(ctx context.Context, conn *coordConn, w nodeproto.Welcome, rec noderecord.Signed) error {
	interval := time.Duration(w.HeartbeatMS) * time.Millisecond
	if interval <= 0 {
		interval = defaultHeartbeat
	}
	s := newCoordSession(ctx, c, conn, rec.Signature, w.Features)
	err := conn.leave(ctx, s.loop(interval))
	s.end()
	return err
}
