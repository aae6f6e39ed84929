package ledger_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

func TestAccounts(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	a, err := e.l.CreateAccount(ctx, "acme", 0)
	if err != nil || !a.Frozen || a.FreezeBelow != 256<<20 {
		t.Fatalf("new account %+v %v", a, err)
	}
	if _, err := e.l.CreateAccount(ctx, "acme", 0); !errors.Is(err, ledger.ErrAccountExists) {
		t.Fatalf("twice: %v", err)
	}
	if _, err := e.l.CreateAccount(ctx, "Bad Name", 0); !errors.Is(err, ledger.ErrInvalidAccount) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := e.l.TopUp(ctx, "nobody", 5); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Fatalf("unknown: %v", err)
	}
	a, err = e.l.TopUp(ctx, "acme", 1<<30)
	if err != nil || a.Frozen || a.Balance != 1<<30 {
		t.Fatalf("after top-up %+v %v", a, err)
	}
	if g, _ := e.l.Account(ctx, "acme"); g.Balance != 1<<30 || g.Revision != a.Revision {
		t.Fatalf("published %+v", g)
	}
}

func TestSettle(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	wait := collect(t, e.bus, events.TypeReceiptsSettled)
	e.account(t, "acme", 1<<30, 1)
	n := nodeKey("node-a")
	s1, s2 := newSession(t, "acme", "1", 1<<30), newSession(t, "acme", "2", 1<<30)
	b := nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s1.deliver(t, n, 4), s2.deliver(t, n, 2)}}
	res, err := e.l.Settle(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 6*blk || res.Balance != 1<<30-6*blk || len(res.Items) != 2 || res.Items[0].Settled != 4*blk {
		t.Fatalf("result %+v", res)
	}
	earned, _ := e.l.Earnings(ctx, n.String())
	if earned.Earned != 6*blk || earned.From["acme"] != 6*blk {
		t.Fatalf("earnings %+v", earned)
	}
	ev := wait(1)[0]
	var p events.ReceiptsSettled
	if err := ev.Decode(&p); err != nil || p.Bytes != 6*blk || p.Node != n.String() || p.Sessions != 2 {
		t.Fatalf("event %+v %v", p, err)
	}

	// Only the increase of a later receipt is applied.
	b2 := nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s1.deliver(t, n, 3)}}
	res, err = e.l.Settle(ctx, b2)
	if err != nil || res.Applied != 3*blk || res.Items[0].Settled != 7*blk {
		t.Fatalf("increase: %+v %v", res, err)
	}
}

func TestReplayedBatch(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<30, 1)
	n := nodeKey("node-a")
	s := newSession(t, "acme", "1", 1<<30)
	old := nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.deliver(t, n, 2)}}
	cur := nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.deliver(t, n, 3)}}
	if _, err := e.l.Settle(ctx, cur); err != nil {
		t.Fatal(err)
	}
	before, _ := e.l.Account(ctx, "acme")
	for _, b := range []nodeproto.Batch{cur, cur, old} {
		res, err := e.l.Settle(ctx, b)
		if err != nil || res.Applied != 0 || res.Items[0].Settled != 5*blk {
			t.Fatalf("replay applied %+v %v", res, err)
		}
	}
	// The same receipt twice in one batch counts once.
	s2 := newSession(t, "acme", "2", 1<<30)
	it := s2.deliver(t, n, 1)
	res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{it, it}})
	if err != nil || res.Applied != blk {
		t.Fatalf("duplicate item: %+v %v", res, err)
	}
	after, _ := e.l.Account(ctx, "acme")
	if after.Balance != before.Balance-blk || after.Spent != 6*blk {
		t.Fatalf("balance %d -> %d, spent %d", before.Balance, after.Balance, after.Spent)
	}
	if earned, _ := e.l.Earnings(ctx, n.String()); earned.Earned != 6*blk {
		t.Fatalf("earned %d", earned.Earned)
	}
}

// Receipts of one session overtaken by a newer one (a worker paying a
// node on several streams at once) settle nothing beside it: in one batch
// with the newer, before or after it, or in a later batch, the node is
// paid the newer receipt's bytes once.
func TestOvertakenReceiptsSettleOnce(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<30, 1)
	n := nodeKey("node-a")
	for i, order := range [][2]int{{0, 1}, {1, 0}} {
		s := newSession(t, "acme", "overtaken-"+strconv.Itoa(i), 1<<30)
		items := [2]nodeproto.BatchItem{s.item(t, n, 5*blk, 5), s.item(t, n, 3*blk, 3)} // newer, overtaken
		before, _ := e.l.Account(ctx, "acme")
		res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{items[order[0]], items[order[1]]}})
		if err != nil || res.Applied != 5*blk {
			t.Fatalf("order %v: applied %d, %v; want %d", order, res.Applied, err, 5*blk)
		}
		for _, it := range items {
			if res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{it}}); err != nil || res.Applied != 0 {
				t.Fatalf("order %v: settled again: applied %d, %v", order, res.Applied, err)
			}
		}
		after, _ := e.l.Account(ctx, "acme")
		if before.Balance-after.Balance != 5*blk {
			t.Fatalf("order %v: balance %d → %d, want a debit of %d", order, before.Balance, after.Balance, 5*blk)
		}
	}
}

// Eight nodes settle their own sessions of one account at once, in
// several rounds: no update is lost.
func TestConcurrentSettlements(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<40, 1)
	const nodes, sessions, rounds = 8, 3, 4
	var wg sync.WaitGroup
	errs := make(chan error, nodes*rounds)
	for i := 0; i < nodes; i++ {
		n := nodeKey("node-" + string(rune('a'+i)))
		ss := make([]*session, sessions)
		for j := range ss {
			ss[j] = newSession(t, "acme", string(rune('a'+i))+string(rune('0'+j)), 1<<40)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				var b nodeproto.Batch
				b.Node, b.Account = n, "acme"
				for _, s := range ss {
					b.Items = append(b.Items, s.deliver(t, n, 1))
				}
				if _, err := e.l.Settle(ctx, b); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const want = nodes * sessions * rounds * blk
	a, _ := e.l.Account(ctx, "acme")
	if a.Spent != want || a.Balance != 1<<40-want {
		t.Fatalf("spent %d balance %d, want %d", a.Spent, a.Balance, want)
	}
	for i := 0; i < nodes; i++ {
		n := nodeKey("node-" + string(rune('a'+i)))
		if earned, _ := e.l.Earnings(ctx, n.String()); earned.Earned != want/nodes {
			t.Fatalf("node %d earned %d", i, earned.Earned)
		}
	}
}

// Two nodes settle the same session at the same time, each with a
// receipt for 60% of the budget: the account pays the budget, once.
func TestSameSessionTwoNodes(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<40, 1)
	const budget = 10 * blk
	for round := 0; round < 5; round++ {
		s := newSession(t, "acme", "shared"+string(rune('0'+round)), budget)
		a, b := nodeKey("node-a"), nodeKey("node-b")
		ba := nodeproto.Batch{Node: a, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, a, 6*blk, 1)}}
		bb := nodeproto.Batch{Node: b, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, b, 6*blk, 1)}}
		before, _ := e.l.Account(ctx, "acme")
		var wg sync.WaitGroup
		results := make([]nodeproto.SettleResult, 4)
		for i, batch := range []nodeproto.Batch{ba, bb, ba, bb} { // each twice: replays race too
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.l.Settle(ctx, batch)
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		after, _ := e.l.Account(ctx, "acme")
		if spent := before.Balance - after.Balance; spent != budget {
			t.Fatalf("round %d: account paid %d for a session of budget %d", round, spent, budget)
		}
		var applied, unpayable uint64
		for _, r := range results {
			applied += r.Applied
			for _, it := range r.Items {
				if it.Applied > 0 {
					unpayable += it.Unpayable
				}
			}
		}
		if applied != budget || unpayable != 2*blk {
			t.Fatalf("round %d: applied %d, unpayable %d", round, applied, unpayable)
		}
	}
}

func TestFreezing(t *testing.T) {
	e := newEnv(t, ledger.Config{MaxOverdraft: 4 * blk})
	ctx := ctxT(t)
	wait := collect(t, e.bus, events.TypeAccountFrozen, events.TypeAccountUnfrozen)
	e.account(t, "acme", 10*blk, 3*blk) // unfrozen by the top-up
	n := nodeKey("node-a")
	s := newSession(t, "acme", "1", 1<<30)
	res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, n, 7*blk, 1)}})
	if err != nil || res.Frozen || res.Balance != 3*blk {
		t.Fatalf("at the threshold: %+v %v", res, err)
	}
	res, err = e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, n, 8*blk, 2)}})
	if err != nil || !res.Frozen {
		t.Fatalf("below the threshold: %+v %v", res, err)
	}
	// Delivery beyond balance + overdraft is deferred, never silently
	// pushed below the bound.
	res, err = e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, n, 20*blk, 3)}})
	if err != nil || res.Balance != -4*blk || res.Items[0].Deferred != 6*blk || res.Items[0].Settled != 14*blk {
		t.Fatalf("overdraft: %+v %v", res, err)
	}
	a, _ := e.l.TopUp(ctx, "acme", 100*blk)
	if a.Frozen || a.Balance != 96*blk {
		t.Fatalf("after top-up %+v", a)
	}
	res, err = e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.item(t, n, 20*blk, 3)}})
	if err != nil || res.Applied != 6*blk || res.Balance != 90*blk {
		t.Fatalf("deferred bytes after top-up: %+v %v", res, err)
	}
	// A new account is frozen until its first top-up.
	evs := wait(3)
	if evs[0].Type != events.TypeAccountUnfrozen || evs[1].Type != events.TypeAccountFrozen || evs[2].Type != events.TypeAccountUnfrozen {
		t.Fatalf("events %s, %s, %s", evs[0].Type, evs[1].Type, evs[2].Type)
	}
	var f events.AccountFrozen
	if err := evs[1].Decode(&f); err != nil || f.Account != "acme" || f.Balance != 2*blk || f.Threshold != 3*blk {
		t.Fatalf("frozen event %+v %v", f, err)
	}
}

// The balance never goes below the documented bound, however many nodes
// settle at once.
func TestOverdraftBoundConcurrent(t *testing.T) {
	e := newEnv(t, ledger.Config{MaxOverdraft: 8 * blk})
	ctx := ctxT(t)
	e.account(t, "acme", 16*blk, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var deferred uint64
	for i := 0; i < 8; i++ {
		n := nodeKey("node-" + string(rune('a'+i)))
		s := newSession(t, "acme", string(rune('a'+i)), 1<<30)
		it := s.item(t, n, 5*blk, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{it}})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			deferred += res.Items[0].Deferred
			mu.Unlock()
		}()
	}
	wg.Wait()
	a, _ := e.l.Account(ctx, "acme")
	if a.Balance != -8*blk || deferred != 40*blk-24*blk || !a.Frozen {
		t.Fatalf("balance %d (bound %d), deferred %d, frozen %v", a.Balance, -8*blk, deferred, a.Frozen)
	}
}

// The attacks of issue 6 at the ledger: each refused item is reported,
// the valid ones in the same batch still apply.
func TestAttacks(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<30, 1)
	e.account(t, "other", 1<<30, 1)
	n, m := nodeKey("node-a"), nodeKey("node-b")
	good := newSession(t, "acme", "good", 1<<30)
	s := newSession(t, "acme", "s", 10*blk)

	forgedVoucher := s.voucher
	forgedVoucher.Budget = 1 << 40
	_ = forgedVoucher.Sign(key("not the gateway"))
	fv, _ := forgedVoucher.MarshalBinary()
	forgedReceipt := s.item(t, n, 2*blk, 1)
	forgedReceipt.Receipt = append([]byte(nil), forgedReceipt.Receipt...)
	forgedReceipt.Receipt[104]++ // bytes changed after signing
	otherAccount := newSession(t, "other", "x", 1<<30)

	cases := []struct {
		name string
		item nodeproto.BatchItem
		want error
	}{
		{"forged voucher", nodeproto.BatchItem{Voucher: fv, Receipt: s.item(t, n, blk, 1).Receipt}, payment.ErrUnknownGateway},
		{"forged receipt", forgedReceipt, payment.ErrBadSignature},
		{"receipt for another node", s.item(t, m, blk, 1), payment.ErrWrongNode},
		{"receipt for another session", nodeproto.BatchItem{Voucher: s.enc, Receipt: good.item(t, n, blk, 1).Receipt}, payment.ErrWrongSession},
		{"spending beyond budget", s.item(t, n, 11*blk, 1), payment.ErrOverBudget},
		{"voucher of another account", otherAccount.item(t, n, blk, 1), ledger.ErrWrongAccount},
		{"garbage", nodeproto.BatchItem{Voucher: []byte("x"), Receipt: []byte("y")}, payment.ErrMalformed},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok := good.item(t, n, uint64(i+1)*blk, uint64(i+1))
			res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{c.item, ok}})
			var rej *ledger.RejectedError
			if !errors.As(err, &rej) || len(rej.Items) != 1 || rej.Items[0].Index != 0 || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if res.Applied != blk || len(res.Items) != 1 || res.Items[0].Index != 1 {
				t.Fatalf("valid item not applied: %+v", res)
			}
		})
	}

	t.Run("expired voucher", func(t *testing.T) {
		late := newSession(t, "acme", "late", 1<<30)
		it := late.item(t, n, blk, 1)
		e.clock.Set(late.voucher.Expires.Add(23 * time.Hour)) // within the grace: settles
		if res, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{it}}); err != nil || res.Applied != blk {
			t.Fatalf("within grace: %+v %v", res, err)
		}
		it = late.item(t, n, 2*blk, 2)
		e.clock.Set(late.voucher.Expires.Add(24 * time.Hour))
		_, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{it}})
		if !errors.Is(err, payment.ErrExpired) {
			t.Fatalf("after grace: %v", err)
		}
		e.clock.Set(t0)
	})

	t.Run("bad batches", func(t *testing.T) {
		if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme"}); !errors.Is(err, ledger.ErrInvalidBatch) {
			t.Fatalf("empty: %v", err)
		}
		it := good.item(t, n, 100*blk, 100)
		if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "nobody", Items: []nodeproto.BatchItem{it}}); !errors.Is(err, ledger.ErrUnknownAccount) {
			t.Fatalf("unknown account: %v", err)
		}
	})
}

// Sessions whose receipts can no longer settle are dropped (their keys
// carry a TTL); a receipt for them is refused as expired, never paid
// again.
func TestPrune(t *testing.T) {
	e := newEnv(t, ledger.Config{SettleGrace: time.Hour, PruneMargin: time.Hour})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<30, 1)
	n := nodeKey("node-a")
	old := newSession(t, "acme", "old", 1<<30)
	oldItem := old.item(t, n, blk, 1)
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{oldItem}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(old.voucher.Expires.Add(3 * time.Hour))
	fresh := newSession(t, "acme", "fresh", 1<<30)
	fresh.voucher.Expires = e.clock.Now().Add(time.Hour)
	_ = fresh.voucher.Sign(gw)
	fresh.enc, _ = fresh.voucher.MarshalBinary()
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{fresh.item(t, n, blk, 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{oldItem}}); !errors.Is(err, payment.ErrExpired) {
		t.Fatalf("pruned session replayed: %v", err)
	}
}

// Amounts outside what the ledger can count are refused with an error
// and change no balance: a top-up of 0 or beyond MaxAmount, one that
// would take the balance beyond MaxAmount (it wrapped to a negative
// balance), and a charge whose sites add up beyond 64 bits (its total
// wrapped to a few bytes while the sites' spend grew by exabytes).
func TestAmountsOutOfRange(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1<<20, 1)
	for _, n := range []uint64{0, ledger.MaxAmount + 1, 1 << 63, 1<<64 - 1} {
		if _, err := e.l.TopUp(ctx, "acme", n); !errors.Is(err, ledger.ErrInvalidAmount) {
			t.Fatalf("top-up of %d: %v, want ErrInvalidAmount", n, err)
		}
	}
	if _, err := e.l.TopUp(ctx, "acme", ledger.MaxAmount-1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.TopUp(ctx, "acme", ledger.MaxAmount); !errors.Is(err, ledger.ErrInvalidAmount) {
		t.Fatalf("top-up beyond MaxAmount in all: %v, want ErrInvalidAmount", err)
	}
	if a, _ := e.l.Account(ctx, "acme"); a.Balance != ledger.MaxAmount || a.ToppedUp != ledger.MaxAmount {
		t.Fatalf("balance %d, topped up %d; want %d", a.Balance, a.ToppedUp, int64(ledger.MaxAmount))
	}
	_, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw", Seq: 1,
		Sites: map[string]uint64{"a": 1 << 63, "b": 1<<63 + 5}})
	if !errors.Is(err, ledger.ErrInvalidCharge) {
		t.Fatalf("charge adding up beyond 64 bits: %v, want ErrInvalidCharge", err)
	}
	d, err := e.l.Dashboard(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d.Account.Balance != ledger.MaxAmount || d.Spend.Gateway != 0 || len(d.Sites) != 0 {
		t.Fatalf("after a refused charge: %+v", d)
	}
}
