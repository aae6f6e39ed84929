package coordinator

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// Coordinator is the node registry: it authenticates nodes joining over
// WebSocket, records them in the nodes KV bucket, tracks their heartbeats
// and declares them lost when they stop. Several coordinators may share one
// Bus: each sees every node through the bucket, and any of them declares a
// silent node lost.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	started time.Time            // by cfg.Now: nodes get a heartbeat deadline to rejoin
	kv      jetstream.KeyValue   // nodes
	pkv     jetstream.KeyValue   // placements
	pkvLead *events.LeaderKV     // placements, read from the stream's leader (Keep)
	okv     jetstream.KeyValue   // operators
	lkv     jetstream.KeyValue   // leases
	sub     *events.Subscription // placement
	repSub  *events.Subscription // re-replication

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // watcher, monitor, connections

	records noderecord.Verifier // node records, each signature checked once

	mu     sync.Mutex
	closed bool
	cache  map[string]cachedState // by node id, mirror of the bucket
	conns  map[string]*nodeConn   // local sessions by node id
	issued map[string]nonceState  // challenge nonces by hex
	// placements mirrors the placements bucket, by root.
	placements map[string]cachedPlacement
	accounts   map[string]nodeproto.AccountState // mirror of the ledger's accounts bucket
	operators  map[string]OperatorRecord         // mirror of the operators bucket
	auditing   map[auditKey]bool                 // audits running; true: run again once done
	auditEnded map[auditKey]time.Time            // when audits last ended (retryPins' guard)
	auditSem   chan struct{}                     // bounds them
	once       sync.Once
	sources    []ReferenceSource // the collector's (collect.go)
	cmetrics   *collectMetrics

	ledger       *ledger.Ledger
	gwKeys       *GatewayKeys
	settleLimit  keyLimiter         // settlement batches per node
	repairGrants keyLimiter         // repair grants per operator
	relaySub     *nats.Subscription // offers relayed by other coordinators
	relaySem     chan struct{}      // bounds them

	// retryPassed, when set (by tests, export_test.go), is called with
	// the time of each pass of retryPins once its retries are stored.
	retryPassed atomic.Pointer[func(now time.Time)]
	// beforeSendPin, when set (by tests), is called as a pin order is
	// about to be sent.
	beforeSendPin atomic.Pointer[func(root, node string)]
}

type cachedState struct {
	state NodeState
	rev   uint64
}

type nonceState struct {
	expires time.Time
	used    bool
}

// New starts a Coordinator on cfg.Bus. Serve its Handler; stop it with Close.
func New(ctx context.Context, cfg Config) (*Coordinator, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	kv, err := cfg.Bus.KV(events.BucketNodes)
	if err != nil {
		return nil, err
	}
	pkv, err := cfg.Bus.KV(events.BucketPlacements)
	if err != nil {
		return nil, err
	}
	pkvLead, err := cfg.Bus.LeaderKV(events.BucketPlacements)
	if err != nil {
		return nil, err
	}
	okv, err := cfg.Bus.KV(events.BucketOperators)
	if err != nil {
		return nil, err
	}
	lkv, err := cfg.Bus.KV(events.BucketLeases)
	if err != nil {
		return nil, err
	}
	cmetrics, err := newCollectMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:        cfg,
		started:    cfg.Now(),
		log:        cfg.Logger.With("component", "coordinator", "coordinator", cfg.ID),
		kv:         kv,
		pkv:        pkv,
		pkvLead:    pkvLead,
		okv:        okv,
		lkv:        lkv,
		cmetrics:   cmetrics,
		operators:  make(map[string]OperatorRecord),
		auditing:   make(map[auditKey]bool),
		auditEnded: make(map[auditKey]time.Time),
		auditSem:   make(chan struct{}, cfg.AuditConcurrency),
		cache:      make(map[string]cachedState),
		conns:      make(map[string]*nodeConn),
		issued:     make(map[string]nonceState),
		placements: make(map[string]cachedPlacement),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// The watch lives until Close (a watch stops with its context); ctx
	// only bounds the initial load.
	w, err := kv.WatchAll(c.ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	// The initial values arrive first, then a nil entry: wait for it so
	// Nodes is complete as soon as New returns.
	if err := events.LoadInitial(ctx, w, c.applyEntry); err != nil {
		_ = w.Stop()
		c.cancel()
		return nil, err
	}
	pw, err := pkv.WatchAll(c.ctx)
	if err != nil {
		_ = w.Stop()
		c.cancel()
		return nil, err
	}
	if err := events.LoadInitial(ctx, pw, c.applyPlacement); err != nil {
		_ = w.Stop()
		_ = pw.Stop()
		c.cancel()
		return nil, err
	}
	ow, err := okv.WatchAll(c.ctx)
	if err == nil {
		err = events.LoadInitial(ctx, ow, c.applyOperator)
		if err != nil {
			_ = ow.Stop()
		}
	}
	if err != nil {
		_ = w.Stop()
		_ = pw.Stop()
		c.cancel()
		return nil, err
	}
	if err := c.startPayments(ctx); err != nil {
		_ = w.Stop()
		_ = pw.Stop()
		_ = ow.Stop()
		c.cancel()
		c.wg.Wait()
		return nil, err
	}
	if err := c.subscribeOffers(); err != nil {
		_ = w.Stop()
		_ = pw.Stop()
		_ = ow.Stop()
		c.cancel()
		c.wg.Wait()
		return nil, err
	}
	c.wg.Add(7)
	go c.auditLoop()
	go c.watchKV(w, c.applyEntry)
	go c.watchKV(pw, c.applyPlacement)
	go c.watchKV(ow, c.applyOperator)
	go c.monitor()
	go c.forwardReports()
	go c.retryPins()
	if !cfg.NoPlacement {
		c.sub, err = cfg.Bus.Subscribe(c.ctx, PlacementDurable, c.onDeployed, events.TypeSiteDeployed)
		if err == nil {
			c.repSub, err = cfg.Bus.Subscribe(c.ctx, ReplicationDurable, c.onNodeChange, events.TypeNodeLost, events.TypeNodeJoined)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		if cfg.RebalanceInterval > 0 {
			c.wg.Add(1)
			go c.every(c.cfg.RebalanceInterval, "rebalancing", func(ctx context.Context) error { _, err := c.Rebalance(ctx); return err })
		}
		if cfg.RepairInterval > 0 {
			c.wg.Add(1)
			go c.every(c.cfg.RepairInterval, "repairing short placements", func(ctx context.Context) error {
				_, _, err := c.repairPass(ctx)
				return err
			})
		}
		if cfg.CollectInterval > 0 {
			c.wg.Add(1)
			go c.every(c.cfg.CollectInterval, "collecting unreferenced content", func(ctx context.Context) error { _, err := c.Collect(ctx); return err })
		}
	}
	return c, nil
}

// ID returns the coordinator's id.
func (c *Coordinator) ID() string { return c.cfg.ID }

// Handler serves nodeproto.ConnectPath.
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nodeproto.ConnectPath, c.ServeConnect)
	return mux
}

// Nodes returns the signed records of the live nodes that heartbeat within
// the deadline and whose records are valid now, ordered by node id. It
// implements the gateway's NodeSource.
func (c *Coordinator) Nodes(ctx context.Context) ([]noderecord.Signed, error) {
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]noderecord.Signed, len(live))
	for i, s := range live {
		out[i] = s.Record
	}
	return out, nil
}

// NodesFor returns the records Nodes would return, ranked for a visitor at
// client by Config.Router: nodes in the client's ASN first, then its
// region, then by RTT and load. It implements the gateway's optional
// RankedNodeSource.
func (c *Coordinator) NodesFor(ctx context.Context, client netip.Addr) ([]noderecord.Signed, error) {
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]noderecord.Signed, len(live))
	cands := make([]Candidate, len(live))
	for i, s := range live {
		cands[i] = s.Candidate()
		byID[s.Node()] = s.Record
	}
	ranked := c.cfg.Router.Rank(client, "", cands)
	out := make([]noderecord.Signed, len(ranked))
	for i, cand := range ranked {
		out[i] = byID[cand.Node]
	}
	return out, nil
}

// Router is the router NodesFor ranks with (Config.Router).
func (c *Coordinator) Router() *Router { return c.cfg.Router }

// LiveNodes returns the states of the nodes Nodes would return.
func (c *Coordinator) LiveNodes(ctx context.Context) ([]NodeState, error) {
	states, err := c.NodeStates(ctx)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	return slices.DeleteFunc(states, func(s NodeState) bool {
		return s.State != StateLive || now.Sub(s.LastSeen) > c.cfg.deadline() || c.records.Verify(s.Record, now) != nil
	}), nil
}

// NodeStates returns every known node, live or lost, ordered by node id.
func (c *Coordinator) NodeStates(context.Context) ([]NodeState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	out := make([]NodeState, 0, len(c.cache))
	for _, cs := range c.cache {
		out = append(out, cs.state)
	}
	slices.SortFunc(out, func(a, b NodeState) int { return strings.Compare(a.Node(), b.Node()) })
	return out, nil
}

// Close closes every node connection (StatusGoingAway) and stops the
// coordinator's goroutines. Node states are left as they are: nodes
// reconnect to another coordinator, or are declared lost by one. It is
// idempotent.
func (c *Coordinator) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		if c.relaySub != nil {
			_ = c.relaySub.Unsubscribe()
		}
		if c.sub != nil {
			c.sub.Stop()
		}
		if c.repSub != nil {
			c.repSub.Stop()
		}
		c.cancel()
		c.wg.Wait()
		if c.ledger != nil {
			_ = c.ledger.Close()
		}
	})
	return nil
}

// loadInitial applies a new watch's current values: they arrive first,
// then a nil entry.

// watchKV applies every update of w until Close; it owns w and stops it.
func (c *Coordinator) watchKV(w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry)) {
	defer c.wg.Done()
	events.Watch(c.ctx, w, apply)
}

func (c *Coordinator) applyEntry(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		c.mu.Lock()
		if cs, ok := c.cache[e.Key()]; ok && cs.rev < e.Revision() {
			delete(c.cache, e.Key())
		}
		c.mu.Unlock()
		return
	}
	s, err := decodeState(e.Value())
	if err != nil {
		c.log.Warn("bad node state in KV", "node", e.Key(), "err", err)
		return
	}
	if !c.cacheStore(e.Key(), s, e.Revision()) {
		return
	}
	// A newer session elsewhere supersedes a local one. (A newer session
	// here replaced the old connection in admit; a state of an older
	// session here, delivered late, supersedes nothing.)
	c.mu.Lock()
	nc := c.conns[e.Key()]
	c.mu.Unlock()
	if nc != nil && s.Session != nc.session && s.Coordinator != c.cfg.ID {
		nc.stop(ErrSuperseded)
	}
}

// cacheStore keeps s unless the cache holds a newer revision; it reports
// whether s was kept.
func (c *Coordinator) cacheStore(node string, s NodeState, rev uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.cache[node]; ok && cs.rev >= rev {
		return false
	}
	c.cache[node] = cachedState{state: s, rev: rev}
	return true
}

// monitor declares silent nodes lost and forgets expired challenges.
func (c *Coordinator) monitor() {
	defer c.wg.Done()
	tick := c.cfg.HeartbeatInterval / 2
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		now := c.cfg.Now()
		var stale []NodeState
		c.mu.Lock()
		for _, cs := range c.cache {
			if cs.state.State == StateLive && now.Sub(cs.state.LastSeen) > c.cfg.deadline() {
				stale = append(stale, cs.state)
			}
		}
		for k, n := range c.issued {
			if now.After(n.expires) {
				delete(c.issued, k)
			}
		}
		c.mu.Unlock()
		for _, s := range stale {
			c.markLost(c.ctx, s.Node(), s.Session, "heartbeat timeout", true)
		}
	}
}

// markLost sets the node lost if it is still live in session (and, with
// onlyIfStale, still silent past the deadline), then emits node.lost. Of
// several coordinators racing, one writes and the event id dedupes the rest.
func (c *Coordinator) markLost(ctx context.Context, node, session, reason string, onlyIfStale bool) {
	now := c.cfg.Now()
	st, wrote, err := c.updateState(ctx, node, func(cur *NodeState, exists bool) bool {
		if !exists || cur.State != StateLive || cur.Session != session {
			return false
		}
		if onlyIfStale && now.Sub(cur.LastSeen) <= c.cfg.deadline() {
			return false
		}
		cur.State, cur.LostAt, cur.Reason = StateLost, now.UTC(), reason
		return true
	})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("marking node lost failed", "node", node, "err", err)
		}
		return
	}
	c.mu.Lock()
	nc := c.conns[node]
	c.mu.Unlock()
	if nc != nil && nc.session == session {
		nc.stop(ErrHeartbeatTimeout)
	}
	if !wrote {
		return
	}
	c.log.Info("node lost", "node", node, "session", session, "reason", reason)
	c.emit(ctx, "node.lost/"+node+"/"+session, events.TypeNodeLost, events.NodeLost{
		Node: node, Coordinator: c.cfg.ID, Session: session, LastSeen: st.LastSeen, Reason: reason,
	})
}

func (c *Coordinator) emit(ctx context.Context, id string, t events.Type, data any) {
	ev, err := events.NewWithID(id, t, c.cfg.ID, data)
	if err == nil {
		err = c.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Warn("event not published", "type", t, "id", id, "err", err)
	}
}

// ServeConnect upgrades to WebSocket and runs one node session.
func (c *Coordinator) ServeConnect(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		http.Error(w, "coordinator shutting down", http.StatusServiceUnavailable)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: c.cfg.OriginPatterns})
	if err != nil {
		c.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(c.cfg.MaxMessageBytes)
	nc := newNodeConn(c, ws, r.RemoteAddr)
	nc.run()
}
