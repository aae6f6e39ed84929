package payment

import "time"

// SettlePolicy decides when a node submits its receipts for an account to
// the coordinator. Settling costs the coordinator signature checks and a
// compare-and-set; not settling is the node's risk: spend it knows of that
// the ledger has not debited may turn out to exceed what the account can
// pay. The policy bounds that risk to a fraction of the account's balance,
// shared among the nodes serving it:
//
//	settle when  uncommitted > Fraction × balance / nodes
//	        or   uncommitted > 0 and  since last settlement ≥ MaxInterval
//	        or   uncommitted > MaxBytes (when set)
//
// If every one of the n nodes serving an account follows it, the spend not
// yet debited is at most Fraction × balance plus one credit window per
// session in flight, so with Fraction < 1 the account stays solvent as long
// as the balance the nodes see is not older than the time it takes them to
// deliver (1 − Fraction) × balance. The zero value is DefaultSettlePolicy.
type SettlePolicy struct {
	// Fraction of balance/nodes beyond which a node settles. Default 0.25.
	Fraction float64
	// MaxInterval bounds the time receipts stay unsettled. Default 5 min.
	MaxInterval time.Duration
	// MaxBytes settles once this much is uncommitted regardless of the
	// balance (0: no such bound).
	MaxBytes uint64
}

// DefaultSettlePolicy is the policy a node uses unless configured.
var DefaultSettlePolicy = SettlePolicy{Fraction: 0.25, MaxInterval: 5 * time.Minute}

// SettleState is what a node knows about one account.
type SettleState struct {
	Uncommitted uint64        // bytes receipted to this node and not settled
	Balance     int64         // the account's last published balance, bytes
	Nodes       int           // nodes serving the account (≥ 1)
	SinceLast   time.Duration // since this node last settled the account
}

func (p SettlePolicy) normalize() SettlePolicy {
	if p.Fraction <= 0 {
		p.Fraction = DefaultSettlePolicy.Fraction
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = DefaultSettlePolicy.MaxInterval
	}
	return p
}

// Threshold returns the uncommitted bytes beyond which the node settles for
// a balance shared by nodes. A balance at or below zero gives 0: settle
// whatever is uncommitted.
func (p SettlePolicy) Threshold(balance int64, nodes int) uint64 {
	p = p.normalize()
	if nodes < 1 {
		nodes = 1
	}
	if balance <= 0 {
		return 0
	}
	t := uint64(p.Fraction * float64(balance) / float64(nodes))
	if p.MaxBytes > 0 && t > p.MaxBytes {
		t = p.MaxBytes
	}
	return t
}

// ShouldSettle reports whether the node should settle now.
func (p SettlePolicy) ShouldSettle(s SettleState) bool {
	if s.Uncommitted == 0 {
		return false
	}
	p = p.normalize()
	return s.Uncommitted > p.Threshold(s.Balance, s.Nodes) || s.SinceLast >= p.MaxInterval
}
