package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/payment"
)

// Payment messages on the node WebSocket (docs/protocol.md §6).
const (
	// MsgPayments (coordinator → node): gateway keys, account states and
	// the node count; the first one right after welcome is complete
	// (Full), later ones carry the current keys and the accounts that
	// changed.
	MsgPayments = "payments"
	// MsgSettle (node → coordinator): a settlement batch. Only sent to a
	// coordinator that announced payments with MsgPayments.
	MsgSettle = "settle"
	// MsgSettled (coordinator → node): the answer to MsgSettle.
	MsgSettled = "settled"
)

// Payments is the payment state a coordinator pushes to its nodes.
type Payments struct {
	Full        bool           `json:"full,omitempty"` // Accounts is every account, not a change
	GatewayKeys [][]byte       `json:"gatewayKeys"`    // ed25519 public keys vouchers may be signed with
	Accounts    []AccountState `json:"accounts,omitempty"`
	Nodes       int            `json:"nodes"` // live nodes, for payment.SettlePolicy
}

// AccountState is what nodes need of an account: its balance and whether
// it is frozen (then its sessions are refused).
type AccountState struct {
	Name    string `json:"name"`
	Balance int64  `json:"balance"` // bytes
	Frozen  bool   `json:"frozen"`
}

// Settle asks the coordinator to apply a batch; Batch.Node must be the
// node's own key.
type Settle struct {
	ID    uint64       `json:"id"` // echoed in Settled
	Batch ledger.Batch `json:"batch"`
}

// Settled answers Settle. Result holds what was applied; Code is empty on
// success, a payment.Code or one of the SettleCode* values when the batch
// was refused as a whole; Rejected lists refused items (the others were
// applied).
type Settled struct {
	ID       uint64         `json:"id"`
	Result   *ledger.Result `json:"result,omitempty"`
	Code     string         `json:"code,omitempty"`
	Rejected []RejectedItem `json:"rejected,omitempty"`
}

// RejectedItem is one refused batch item.
type RejectedItem struct {
	Index int    `json:"index"`
	Code  string `json:"code"`
}

// Settlement refusal codes beyond payment.Code.
const (
	SettleCodeWrongNode    = "wrong_node"      // Batch.Node is not the connected node
	SettleCodeInvalidBatch = "invalid_batch"   // empty or too large
	SettleCodeUnknown      = "unknown_account" // no such account
	SettleCodeWrongAccount = "wrong_account"   // voucher of another account
	SettleCodeInternal     = "internal"        // retry later
	SettleCodeRateLimited  = "rate_limited"    // too many batches from this node; retry later
)

// settleRate and settleBurst bound the batches the coordinator applies per
// node (a token bucket by node id, so reconnecting does not refill it):
// each item costs two signature checks and a batch an account read, even
// when it is a replay that applies nothing. A node settles an account in
// batches of under a hundred sessions, so a burst of 50 covers thousands.
const (
	settleRate  = 5.0 // batches per second
	settleBurst = 50.0
)

// settleLimiter is a token bucket per node id.
type settleLimiter struct {
	mu      sync.Mutex
	buckets map[string]*settleBucket
}

type settleBucket struct {
	tokens float64
	last   time.Time
}

func (l *settleLimiter) allow(node string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*settleBucket)
	}
	b := l.buckets[node]
	if b == nil {
		if len(l.buckets) >= 100_000 {
			for id, o := range l.buckets { // forget refilled buckets
				if o.tokens+now.Sub(o.last).Seconds()*settleRate >= settleBurst {
					delete(l.buckets, id)
				}
			}
		}
		b = &settleBucket{tokens: settleBurst, last: now}
		l.buckets[node] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(settleBurst, b.tokens+d.Seconds()*settleRate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Ledger returns the coordinator's ledger.
func (c *Coordinator) Ledger() *ledger.Ledger { return c.ledger }

// GatewayKeys returns the gateway keys the coordinator trusts.
func (c *Coordinator) GatewayKeys() *GatewayKeys { return c.gwKeys }

// startPayments opens the gateway keys and the ledger and starts their
// watches. It runs in New.
func (c *Coordinator) startPayments(ctx context.Context) error {
	c.gwKeys = &GatewayKeys{set: payment.KeySet{}}
	c.accounts = make(map[string]AccountState)
	gkv, err := gatewaysKV(ctx, c.cfg.Bus)
	if err != nil {
		return err
	}
	gw, err := gkv.WatchAll(c.ctx)
	if err != nil {
		return err
	}
	if err := events.LoadInitial(ctx, gw, c.gwKeys.apply); err != nil {
		_ = gw.Stop()
		return err
	}
	c.gwKeys.notify = func() { c.broadcastPayments(nil) }
	lcfg := c.cfg.Ledger
	lcfg.Bus, lcfg.Keys = c.cfg.Bus, c.gwKeys
	if lcfg.Logger == nil {
		lcfg.Logger = c.cfg.Logger
	}
	if lcfg.Now == nil {
		lcfg.Now = c.cfg.Now
	}
	if c.ledger, err = ledger.New(ctx, lcfg); err != nil {
		_ = gw.Stop()
		return err
	}
	akv, err := c.cfg.Bus.JetStream().KeyValue(ctx, ledger.BucketAccounts)
	if err != nil {
		_ = gw.Stop()
		return err
	}
	aw, err := akv.WatchAll(c.ctx)
	if err != nil {
		_ = gw.Stop()
		return err
	}
	if err := events.LoadInitial(ctx, aw, func(e jetstream.KeyValueEntry) { c.applyAccount(e, false) }); err != nil {
		_ = gw.Stop()
		_ = aw.Stop()
		return err
	}
	c.wg.Add(2)
	go c.watchKV(gw, c.gwKeys.apply)
	go c.watchKV(aw, func(e jetstream.KeyValueEntry) { c.applyAccount(e, true) })
	return nil
}

// applyAccount mirrors an account's balance and frozen flag and, when
// push, sends a change to the nodes.
func (c *Coordinator) applyAccount(e jetstream.KeyValueEntry, push bool) {
	var a AccountState
	if e.Operation() != jetstream.KeyValuePut {
		c.mu.Lock()
		delete(c.accounts, e.Key())
		c.mu.Unlock()
		return
	}
	if err := json.Unmarshal(e.Value(), &a); err != nil || a.Name == "" {
		return
	}
	c.mu.Lock()
	old, had := c.accounts[a.Name]
	c.accounts[a.Name] = a
	c.mu.Unlock()
	if push && (!had || old != a) {
		c.broadcastPayments([]AccountState{a})
	}
}

// paymentsMessage builds a Payments message: every account when accounts
// is nil and full, else accounts.
func (c *Coordinator) paymentsMessage(accounts []AccountState, full bool) Message {
	p := &Payments{Full: full, GatewayKeys: c.gwKeys.List(), Accounts: accounts}
	c.mu.Lock()
	if full {
		p.Accounts = make([]AccountState, 0, len(c.accounts))
		for _, a := range c.accounts {
			p.Accounts = append(p.Accounts, a)
		}
	}
	now := c.cfg.Now()
	for _, cs := range c.cache {
		if cs.state.State == StateLive && now.Sub(cs.state.LastSeen) < c.cfg.deadline() {
			p.Nodes++
		}
	}
	c.mu.Unlock()
	return Message{Type: MsgPayments, Payments: p}
}

// broadcastPayments sends a change to every welcomed node connection.
func (c *Coordinator) broadcastPayments(accounts []AccountState) {
	m := c.paymentsMessage(accounts, false)
	c.mu.Lock()
	conns := make([]*nodeConn, 0, len(c.conns))
	for _, nc := range c.conns {
		conns = append(conns, nc)
	}
	c.mu.Unlock()
	for _, nc := range conns {
		nc.pinMu.Lock()
		ready := nc.ready
		nc.pinMu.Unlock()
		if !ready {
			continue
		}
		if err := nc.write(m); err != nil {
			c.log.Debug("payments not pushed", "node", nc.node, "err", err)
		}
	}
}

// settle applies a node's batch and answers it.
func (n *nodeConn) settle(s *Settle) error {
	c := n.c
	ans := Settled{ID: s.ID}
	switch {
	case s.Batch.Node.String() != n.node:
		ans.Code = SettleCodeWrongNode
	case !c.settleLimit.allow(n.node, c.cfg.Now()):
		ans.Code = SettleCodeRateLimited
	default:
		ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		res, err := c.ledger.Settle(ctx, s.Batch)
		cancel()
		var rej *ledger.RejectedError
		switch {
		case err == nil:
			ans.Result = &res
		case errors.As(err, &rej):
			ans.Result = &res
			for _, it := range rej.Items {
				ans.Rejected = append(ans.Rejected, RejectedItem{Index: it.Index, Code: settleCode(it.Err)})
			}
		default:
			ans.Code = settleCode(err)
			n.log.Warn("settlement refused", "account", s.Batch.Account, "err", err)
		}
	}
	if err := n.write(Message{Type: MsgSettled, Settled: &ans}); err != nil {
		return fmt.Errorf("coordinator: settled: %w", err)
	}
	return nil
}

func settleCode(err error) string {
	if code := payment.Code(err); code != "" {
		return code
	}
	switch {
	case errors.Is(err, ledger.ErrWrongAccount):
		return SettleCodeWrongAccount
	case errors.Is(err, ledger.ErrUnknownAccount):
		return SettleCodeUnknown
	case errors.Is(err, ledger.ErrInvalidBatch), errors.Is(err, ledger.ErrInvalidAccount):
		return SettleCodeInvalidBatch
	}
	return SettleCodeInternal
}

// Account returns the last known state of an account.
func (c *Coordinator) Account(name string) (AccountState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.accounts[name]
	return a, ok
}
