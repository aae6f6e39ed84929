package node

import (
	"context"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/receiptstore"
)

// maxSettleItems bounds the sessions of one settlement batch so that its
// settle message stays within the coordinator's MaxMessageBytes (default
// 64 KiB; a larger message closes the connection). An item is the base64
// of a voucher (at most payment.MaxVoucherBytes) and of a receipt in JSON,
// at most 936 bytes, so 52 items are at most 48 KiB.
const maxSettleItems = (48 << 10) / settleItemBytes

const settleItemBytes = (payment.MaxVoucherBytes+2)/3*4 + (payment.ReceiptBytes+2)/3*4 + 32

// settleRetry is how long the settler leaves an account alone after a
// failed settlement (no coordinator, a refused batch).
const settleRetry = time.Minute

// settleLoop evaluates the settlement policy every SettleCheck, and when
// the coordinator pushes a change, until ctx ends.
func (p *payments) settleLoop(ctx context.Context) {
	started := p.n.cfg.Now()
	t := time.NewTicker(p.cfg.SettleCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.settleNow:
		}
		now := p.n.cfg.Now()
		p.pruneSessions(now)
		for account, unc := range p.store.Uncommitted() {
			p.mu.Lock()
			a, known := p.accounts[account]
			last, ok := p.lastSettle[account]
			nodes := p.nodes
			p.mu.Unlock()
			if !ok {
				last = started
			}
			balance := a.Balance
			if !known {
				balance = 0 // unknown: settle what is held
			}
			if !p.cfg.Policy.ShouldSettle(payment.SettleState{
				Uncommitted: unc, Balance: balance, Nodes: max(nodes, 1), SinceLast: now.Sub(last),
			}) {
				continue
			}
			p.mu.Lock()
			wait := p.retryAt[account]
			p.mu.Unlock()
			if now.Before(wait) {
				continue
			}
			if _, err := p.settle(ctx, account); err != nil && ctx.Err() == nil {
				p.n.log.Warn("settlement failed; retrying later", "account", account, "err", err)
				p.mu.Lock()
				p.retryAt[account] = now.Add(settleRetry)
				p.mu.Unlock()
			}
		}
	}
}

// pruneSessions forgets the in-memory state of sessions whose voucher
// expired (their receipts stay in the store until settled).
func (p *payments) pruneSessions(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, ps := range p.sessions {
		ps.mu.Lock()
		v, _ := ps.tracker.Voucher()
		ps.mu.Unlock()
		if !now.Before(v.Expires) {
			delete(p.sessions, k)
		}
	}
}

// settle submits every unsettled session of account to the coordinator
// and records what the ledger settled. It returns the bytes newly
// applied.
func (p *payments) settle(ctx context.Context, account string) (uint64, error) {
	nc := p.n.coordClient()
	if nc == nil {
		return 0, ErrNoCoordinator
	}
	entries := p.store.Unsettled(account)
	var applied uint64
	for len(entries) > 0 {
		chunk := entries[:min(len(entries), maxSettleItems)]
		entries = entries[len(chunk):]
		b := nodeproto.Batch{Node: p.me, Account: account, Items: make([]nodeproto.BatchItem, 0, len(chunk))}
		for _, e := range chunk {
			v, err := e.Voucher.MarshalBinary()
			if err != nil {
				return applied, err
			}
			r, err := e.Receipt.MarshalBinary()
			if err != nil {
				return applied, err
			}
			b.Items = append(b.Items, nodeproto.BatchItem{Voucher: v, Receipt: r})
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ans, err := nc.Settle(sctx, b)
		cancel()
		if err != nil {
			p.n.metrics.settlements.WithLabelValues("error").Inc()
			return applied, err
		}
		if ans.Code != "" {
			p.n.metrics.settlements.WithLabelValues(ans.Code).Inc()
			return applied, &SettleError{Code: ans.Code}
		}
		n, err := p.record(chunk, ans)
		applied += n
		if err != nil {
			return applied, err
		}
	}
	p.mu.Lock()
	p.lastSettle[account] = p.n.cfg.Now()
	bal := p.accounts[account].Balance
	p.mu.Unlock()
	p.n.log.Info("settled", "account", account, "bytes", applied, "accountBalance", bal)
	return applied, nil
}

// record marks what the ledger settled. Items refused for good (bad
// signatures, expired beyond grace, another account) and bytes beyond the
// budget will never be paid: they are marked settled so that they are not
// submitted again, and counted.
func (p *payments) record(chunk []receiptstore.Entry, ans nodeproto.Settled) (uint64, error) {
	res := ans.Result
	if res == nil {
		return 0, nil
	}
	p.n.metrics.settlements.WithLabelValues("ok").Inc()
	p.n.metrics.settledBytes.Add(float64(res.Applied))
	for _, ir := range res.Items {
		if ir.Index < 0 || ir.Index >= len(chunk) {
			continue
		}
		e := chunk[ir.Index]
		upTo := ir.Settled
		if ir.Deferred == 0 && ir.Unpayable > 0 {
			upTo = e.Receipt.Bytes
		}
		if err := p.store.MarkSettled(e.Voucher.Session, upTo); err != nil {
			return res.Applied, err
		}
	}
	for _, rj := range ans.Rejected {
		if rj.Index < 0 || rj.Index >= len(chunk) {
			continue
		}
		p.n.metrics.settleRefused.WithLabelValues(rj.Code).Inc()
		e := chunk[rj.Index]
		p.n.log.Warn("receipt refused by the ledger; dropping it", "account", e.Voucher.Account,
			"session", e.Voucher.Session.String(), "bytes", e.Receipt.Bytes, "code", rj.Code)
		if err := p.store.MarkSettled(e.Voucher.Session, e.Receipt.Bytes); err != nil {
			return res.Applied, err
		}
	}
	p.mu.Lock()
	p.setAccount(nodeproto.AccountState{Name: res.Account, Balance: res.Balance, Frozen: res.Frozen, Revision: res.Revision})
	p.mu.Unlock()
	return res.Applied, nil
}

// SettleNow settles every account the node holds unsettled receipts of,
// whatever the policy says, and returns the bytes the ledger applied.
func (n *Node) SettleNow(ctx context.Context) (uint64, error) {
	if n.pay == nil {
		return 0, ErrNoCoordinator
	}
	var total uint64
	for account := range n.pay.store.Uncommitted() {
		a, err := n.pay.settle(ctx, account)
		total += a
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (n *Node) coordClient() *CoordClient {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.coord
}
