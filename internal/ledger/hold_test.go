package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// Holds: vouchers are held only while the account's available funds
// (balance − held) cover them; settling releases as much, ReleaseHold the
// rest, and a hold lapses at its voucher's expiry.
func TestHoldAndRelease(t *testing.T) {
	const budget = 16 * blk
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 3*budget, 1)
	ss := make([]*session, 5)
	for i := range ss {
		ss[i] = newSession(t, "acme", "h"+string(rune('0'+i)), budget)
	}
	hold := func(s *session) error {
		return e.l.Hold(ctx, "acme", s.voucher.ID(), s.voucher.Budget, s.voucher.Expires)
	}
	for _, s := range ss[:3] {
		if err := hold(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := hold(ss[0]); err != nil {
		t.Fatalf("holding a voucher again: %v", err)
	}
	if err := hold(ss[3]); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("a fourth voucher on funds for three: %v", err)
	}
	if a, _ := e.l.Account(ctx, "acme"); a.Held != 3*budget || a.Sessions != 3 {
		t.Fatalf("held %d by %d", a.Held, a.Sessions)
	}
	// Settling 4 blocks under ss[0] releases 4 blocks of its hold.
	n := nodeKey("node-a")
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{ss[0].deliver(t, n, 4)}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.l.Account(ctx, "acme"); a.Held != 3*budget-4*blk || a.Balance != 3*budget-4*blk {
		t.Fatalf("after settling 4 blocks: %+v", a)
	}
	// Releasing ss[1] makes room for ss[3].
	if err := e.l.ReleaseHold(ctx, "acme", ss[1].voucher.ID()); err != nil {
		t.Fatal(err)
	}
	if err := hold(ss[3]); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	// At expiry every hold lapses without a write.
	e.clock.Set(ss[0].voucher.Expires.Add(time.Minute))
	if a, _ := e.l.Account(ctx, "acme"); a.Held != 0 || a.Sessions != 0 {
		t.Fatalf("after expiry: held %d by %d", a.Held, a.Sessions)
	}
	late := newSession(t, "acme", "late", budget)
	if err := e.l.Hold(ctx, "acme", late.voucher.ID(), budget, e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	// A frozen account holds nothing.
	if _, err := e.l.CreateAccount(ctx, "broke", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Hold(ctx, "broke", ss[4].voucher.ID(), budget, e.clock.Now().Add(time.Hour)); !errors.Is(err, payment.ErrAccountFrozen) {
		t.Fatalf("frozen account: %v", err)
	}
}

// A hold lapses at its voucher's expiry, but the voucher's receipts still
// settle for SettleGrace after it. A client holding the session keys of
// vouchers whose holds lapsed, with a node of its own that the vouchers
// name, must not be able to spend the funds that the account's unexpired
// vouchers hold, nor take the balance below zero: the holds promise the
// nodes serving those vouchers that they will be paid.
func TestLapsedHoldsCannotOverdraw(t *testing.T) {
	const budget = 16 * blk
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 2*budget, 1)
	own, honest := nodeKey("node-a"), nodeKey("node-b")
	hold := func(s *session) {
		t.Helper()
		if err := e.l.Hold(ctx, "acme", s.voucher.ID(), s.voucher.Budget, s.voucher.Expires); err != nil {
			t.Fatal(err)
		}
	}
	// The attacker takes vouchers for the whole balance and signs their
	// budgets away to its own node, which does not settle yet.
	var lapsed []*session
	for _, id := range []string{"a1", "a2"} {
		s := newVoucherSession(t, "acme", "", id, budget, t0.Add(time.Hour))
		hold(s)
		lapsed = append(lapsed, s)
	}
	// Past their expiry their holds lapse: the gateway issues vouchers
	// for the whole balance again, one to an honest visitor.
	e.clock.Set(t0.Add(time.Hour + 2*time.Minute))
	exp := e.clock.Now().Add(time.Hour).Truncate(time.Second)
	live := newVoucherSession(t, "acme", "", "a3", budget, exp)
	visitor := newVoucherSession(t, "acme", "", "h1", budget, exp)
	hold(live)
	hold(visitor)

	var items []nodeproto.BatchItem
	for _, s := range append(lapsed, live) {
		items = append(items, s.item(t, own, budget, 1))
	}
	res, err := e.l.Settle(ctx, nodeproto.Batch{Node: own, Account: "acme", Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != budget {
		t.Fatalf("the attacker's node was paid %d bytes, want %d (its unexpired voucher's hold)", res.Applied, budget)
	}
	for _, it := range res.Items[:2] {
		if it.Applied != 0 || it.Deferred != budget {
			t.Fatalf("lapsed voucher: %+v, want all deferred", it)
		}
	}
	// The honest node serving the visitor's held voucher is paid in full.
	res, err = e.l.Settle(ctx, nodeproto.Batch{Node: honest, Account: "acme", Items: []nodeproto.BatchItem{visitor.item(t, honest, budget, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != budget || res.Items[0].Deferred != 0 {
		t.Fatalf("honest node: %+v, want %d applied", res, budget)
	}
	if a, _ := e.l.Account(ctx, "acme"); a.Balance != 0 || a.Held != 0 {
		t.Fatalf("account after settling: balance %d, held %d; want 0, 0", a.Balance, a.Held)
	}
	// Within grace, a receipt of a lapsed voucher settles out of funds
	// nothing else holds, such as a later top-up.
	if _, err := e.l.TopUp(ctx, "acme", budget); err != nil {
		t.Fatal(err)
	}
	res, err = e.l.Settle(ctx, nodeproto.Batch{Node: own, Account: "acme", Items: items[:1]})
	if err != nil || res.Applied != budget {
		t.Fatalf("lapsed voucher after a top-up: %+v, %v", res, err)
	}
}
