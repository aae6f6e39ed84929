package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/ratelimit"
)

// settleRate and settleBurst bound the batches the coordinator applies per
// node (a token bucket by node id, so reconnecting does not refill it):
// each item costs two signature checks and a batch an account read, even
// when it is a replay that applies nothing. A node settles an account in
// batches of under a hundred sessions, so a burst of 50 covers thousands.
const (
	settleRate  = 5.0 // batches per second
	settleBurst = 50
)

// keyLimiter is a token bucket per key (internal/ratelimit) of the rate
// and burst its first use gives, made then so the Coordinator's zero
// value holds one.
type keyLimiter struct {
	once sync.Once
	l    *ratelimit.Limiter[string]
}

func (s *keyLimiter) allow(key string, now time.Time, rate float64, burst int) bool {
	s.once.Do(func() {
		s.l = ratelimit.New[string](ratelimit.Config{Rate: rate, Burst: burst})
	})
	return s.l.AllowAt(key, now)
}

// Ledger returns the coordinator's ledger.
func (c *Coordinator) Ledger() *ledger.Ledger { return c.ledger }

// GatewayKeys returns the gateway keys the coordinator trusts.
func (c *Coordinator) GatewayKeys() *GatewayKeys { return c.gwKeys }

// startPayments opens the gateway keys and the ledger and starts their
// watches. It runs in New.
func (c *Coordinator) startPayments(ctx context.Context) error {
	c.gwKeys = &GatewayKeys{set: payment.KeySet{}}
	c.accounts = make(map[string]nodeproto.AccountState)
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
	akv, err := c.cfg.Bus.JetStream().KeyValue(ctx, ledger.BucketLedger)
	if err != nil {
		_ = gw.Stop()
		return err
	}
	// Only the accounts' totals: the bucket's session keys are the
	// ledger's own.
	aw, err := akv.Watch(c.ctx, ledger.AccountKeyPrefix+">")
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
	var a nodeproto.AccountState
	if e.Operation() != jetstream.KeyValuePut {
		c.mu.Lock()
		delete(c.accounts, strings.TrimPrefix(e.Key(), ledger.AccountKeyPrefix))
		c.mu.Unlock()
		return
	}
	if err := json.Unmarshal(e.Value(), &a); err != nil || a.Name == "" {
		return
	}
	a.Revision = e.Revision()
	c.mu.Lock()
	old, had := c.accounts[a.Name]
	c.accounts[a.Name] = a
	c.mu.Unlock()
	// Holds and settlements that leave balance and freezing as they were
	// (every hold batch writes the account) are not pushed.
	if push && (!had || old.Balance != a.Balance || old.Frozen != a.Frozen) {
		c.broadcastPayments([]nodeproto.AccountState{a})
	}
}

// maxWatched bounds the accounts one node connection watches.
const maxWatched = 100_000

// paymentsMessage builds a Payments message for n: when full, every
// account n watches, else accounts.
func (c *Coordinator) paymentsMessage(n *nodeConn, accounts []nodeproto.AccountState, full bool) nodeproto.Message {
	p := &nodeproto.Payments{Full: full, GatewayKeys: c.gwKeys.List(), Accounts: accounts}
	var watched []string
	if full {
		watched = n.watched()
	}
	c.mu.Lock()
	if full {
		p.Accounts = make([]nodeproto.AccountState, 0, len(watched))
		for _, name := range watched {
			if a, ok := c.accounts[name]; ok {
				p.Accounts = append(p.Accounts, a)
			}
		}
	}
	now := c.cfg.Now()
	for _, cs := range c.cache {
		if cs.state.State == StateLive && now.Sub(cs.state.LastSeen) < c.cfg.deadline() {
			p.Nodes++
		}
	}
	c.mu.Unlock()
	return nodeproto.Message{Type: nodeproto.MsgPayments, Payments: p}
}

// watched lists the accounts n watches.
func (n *nodeConn) watched() []string {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	out := make([]string, 0, len(n.watch))
	for a := range n.watch {
		out = append(out, a)
	}
	return out
}

// addWatch adds accounts to n's watch set and returns those it did not
// watch yet.
func (n *nodeConn) addWatch(accounts ...string) []string {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	if n.watch == nil {
		n.watch = make(map[string]bool)
	}
	var added []string
	for _, a := range accounts {
		if !n.watch[a] && len(n.watch) < maxWatched && payment.ValidAccount(a) {
			n.watch[a] = true
			added = append(added, a)
		}
	}
	return added
}

// watches reports whether n watches account.
func (n *nodeConn) watches(account string) bool {
	n.watchMu.Lock()
	defer n.watchMu.Unlock()
	return n.watch[account]
}

// watchAccounts handles MsgWatch: it adds the accounts and answers with
// the state of those the coordinator knows.
func (n *nodeConn) watchAccounts(accounts []string) error {
	added := n.addWatch(accounts...)
	var states []nodeproto.AccountState
	n.c.mu.Lock()
	for _, name := range added {
		if a, ok := n.c.accounts[name]; ok {
			states = append(states, a)
		}
	}
	n.c.mu.Unlock()
	if len(states) == 0 {
		return nil
	}
	if err := n.write(n.c.paymentsMessage(n, states, false)); err != nil {
		return fmt.Errorf("coordinator: payments: %w", err)
	}
	return nil
}

// broadcastPayments sends a change to the welcomed node connections: a
// change of gateway keys (accounts nil) to all, an account's to those
// that watch it.
func (c *Coordinator) broadcastPayments(accounts []nodeproto.AccountState) {
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
		var mine []nodeproto.AccountState
		for _, a := range accounts {
			if nc.watches(a.Name) {
				mine = append(mine, a)
			}
		}
		if accounts != nil && len(mine) == 0 {
			continue
		}
		if err := nc.write(c.paymentsMessage(nc, mine, false)); err != nil {
			c.log.Debug("payments not pushed", "node", nc.node, "err", err)
		}
	}
}

// settle applies a node's batch and answers it.
func (n *nodeConn) settle(s *nodeproto.Settle) error {
	c := n.c
	ans := nodeproto.Settled{ID: s.ID}
	switch {
	case s.Batch.Node.String() != n.node:
		ans.Code = nodeproto.SettleCodeWrongNode
	case !c.settleLimit.allow(n.node, c.cfg.Now(), settleRate, settleBurst):
		ans.Code = nodeproto.SettleCodeRateLimited
	default:
		n.addWatch(s.Batch.Account) // it serves the account
		// A node earns nothing under vouchers for a root whose holding
		// it lost (a failed audit or pin).
		ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		res, err := c.ledger.SettleRefusing(ctx, s.Batch, c.failedHolding(n.node))
		cancel()
		var rej *ledger.RejectedError
		switch {
		case err == nil:
			ans.Result = &res
		case errors.As(err, &rej):
			ans.Result = &res
			refused := 0
			for _, it := range rej.Items {
				ans.Rejected = append(ans.Rejected, nodeproto.RejectedItem{Index: it.Index, Code: settleCode(it.Err)})
				if errors.Is(it.Err, errFailedHolding) {
					refused++
				}
			}
			if refused > 0 {
				n.log.Warn("receipts for a failed holding refused", "account", s.Batch.Account, "items", refused)
			}
		default:
			ans.Code = settleCode(err)
			n.log.Warn("settlement refused", "account", s.Batch.Account, "err", err)
		}
	}
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgSettled, Settled: &ans}); err != nil {
		return fmt.Errorf("coordinator: settled: %w", err)
	}
	return nil
}

// errFailedHolding refuses a settlement item whose voucher is for a root
// the node's holding of which failed.
var errFailedHolding = errors.New("coordinator: the node's holding of the voucher's root failed")

// failedHolding refuses the vouchers for a root whose holding by node
// failed (Ledger.SettleRefusing).
func (c *Coordinator) failedHolding(node string) func(payment.Voucher) error {
	return func(v payment.Voucher) error {
		if v.Root == "" {
			return nil
		}
		if p, ok := c.Placement(v.Root); ok && p.Nodes[node].State == HolderFailed {
			return errFailedHolding
		}
		return nil
	}
}

func settleCode(err error) string {
	if code := payment.Code(err); code != "" {
		return code
	}
	switch {
	case errors.Is(err, errFailedHolding):
		return nodeproto.SettleCodeFailedHolding
	case errors.Is(err, ledger.ErrWrongAccount):
		return nodeproto.SettleCodeWrongAccount
	case errors.Is(err, ledger.ErrUnknownAccount):
		return nodeproto.SettleCodeUnknown
	case errors.Is(err, ledger.ErrInvalidBatch), errors.Is(err, ledger.ErrInvalidAccount):
		return nodeproto.SettleCodeInvalidBatch
	}
	return nodeproto.SettleCodeInternal
}

// Account returns the last known state of an account.
func (c *Coordinator) Account(name string) (nodeproto.AccountState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.accounts[name]
	return a, ok
}
