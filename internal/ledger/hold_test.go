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
