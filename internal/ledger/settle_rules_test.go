package ledger

import (
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// TestSettleApply: the arithmetic of settlement on one account record,
// without storage: what a node is credited and the account debited, and
// why the rest is not.
func TestSettleApply(t *testing.T) {
	const (
		MiB  = 1 << 20
		node = "nA"
		peer = "nB"
	)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rules := settleRules{grace: 24 * time.Hour, pruneMargin: time.Hour, maxOverdraft: 8 * MiB}
	voucher := func(budget, nodeCap uint64, expires time.Time) payment.Voucher {
		return payment.Voucher{Version: payment.VoucherVersion, Account: "acme", Site: "blog", Budget: budget, NodeCap: nodeCap,
			Expires: expires, Session: payment.SessionKey{byte(budget), byte(nodeCap)}}
	}
	live := voucher(64*MiB, 16*MiB, now.Add(time.Hour))
	// hold records what Ledger.Hold writes for a voucher holding n.
	hold := func(r *accountRecord, vid string, v payment.Voucher, n uint64) {
		r.Sessions[vid] = &sessionRecord{Expires: v.Expires.Unix(), Budget: v.Budget, Held: n, Nodes: map[string]uint64{}}
		b := r.Held[holdBucket(v.Expires.Unix())]
		if b == nil {
			b = &heldBucket{}
			r.Held[holdBucket(v.Expires.Unix())] = b
		}
		b.Bytes += n
		b.Sessions++
	}
	// item i claims bytes in all for node under v, in session vid.
	item := func(i int, vid string, v payment.Voucher, bytes uint64) checked {
		return checked{index: i, vid: vid, voucher: v, receipt: payment.Receipt{Bytes: bytes, Seq: 1}}
	}
	type want struct {
		applied, unpayable, deferred uint64
		late                         int
		balance                      int64
		held                         uint64 // Held at now after
		frozen, froze                bool
	}
	for _, tc := range []struct {
		name  string
		rec   func(*accountRecord) // prepares the record (balance 100 MiB, threshold 1 MiB)
		items []checked
		want  want
	}{
		{
			name:  "plain",
			items: []checked{item(0, "s1", live, 5*MiB)},
			want:  want{applied: 5 * MiB, balance: 95 * MiB},
		},
		{
			name: "replayed receipt applies nothing",
			rec: func(r *accountRecord) {
				r.Sessions["s1"] = &sessionRecord{Expires: live.Expires.Unix(), Budget: live.Budget, Total: 5 * MiB, Nodes: map[string]uint64{node: 5 * MiB}}
			},
			items: []checked{item(0, "s1", live, 5*MiB)},
			want:  want{balance: 100 * MiB},
		},
		{
			name: "older receipt applies nothing, newer only its increase",
			rec: func(r *accountRecord) {
				r.Sessions["s1"] = &sessionRecord{Expires: live.Expires.Unix(), Budget: live.Budget, Total: 5 * MiB, Nodes: map[string]uint64{node: 5 * MiB}}
			},
			items: []checked{item(0, "s1", live, 3*MiB), item(1, "s1", live, 7*MiB)},
			want:  want{applied: 2 * MiB, balance: 98 * MiB},
		},
		{
			name:  "duplicate item in one batch applies once",
			items: []checked{item(0, "s1", live, 4*MiB), item(1, "s1", live, 4*MiB)},
			want:  want{applied: 4 * MiB, balance: 96 * MiB},
		},
		{
			name:  "per-node cap",
			items: []checked{item(0, "s1", live, 40*MiB)},
			want:  want{applied: 16 * MiB, unpayable: 24 * MiB, balance: 84 * MiB},
		},
		{
			name: "per-node cap counts what the node was already paid",
			rec: func(r *accountRecord) {
				r.Sessions["s1"] = &sessionRecord{Expires: live.Expires.Unix(), Budget: live.Budget, Total: 15 * MiB, Nodes: map[string]uint64{node: 15 * MiB}}
			},
			items: []checked{item(0, "s1", live, 20*MiB)},
			want:  want{applied: 1 * MiB, unpayable: 4 * MiB, balance: 99 * MiB},
		},
		{
			name: "budget over all nodes",
			rec: func(r *accountRecord) {
				r.Sessions["s1"] = &sessionRecord{Expires: live.Expires.Unix(), Budget: live.Budget, Total: 60 * MiB,
					Nodes: map[string]uint64{peer: 16 * MiB, "nC": 16 * MiB, "nD": 16 * MiB, "nE": 12 * MiB}}
			},
			items: []checked{item(0, "s1", live, 10*MiB)},
			want:  want{applied: 4 * MiB, unpayable: 6 * MiB, balance: 96 * MiB},
		},
		{
			name:  "overdraft cap defers the rest",
			rec:   func(r *accountRecord) { r.Balance = 2 * MiB },
			items: []checked{item(0, "s1", live, 16*MiB)},
			want:  want{applied: 10 * MiB, deferred: 6 * MiB, balance: -8 * MiB, frozen: true, froze: true},
		},
		{
			name:  "at the overdraft bound nothing applies",
			rec:   func(r *accountRecord) { r.Balance = -8 * MiB; r.Frozen = true },
			items: []checked{item(0, "s1", live, 3*MiB)},
			want:  want{deferred: 3 * MiB, balance: -8 * MiB, frozen: true},
		},
		{
			name:  "frozen account still pays what was served, within the bounds",
			rec:   func(r *accountRecord) { r.Balance = 0; r.Frozen = true },
			items: []checked{item(0, "s1", live, 3*MiB)},
			want:  want{applied: 3 * MiB, balance: -3 * MiB, frozen: true},
		},
		{
			name:  "crossing the threshold freezes",
			rec:   func(r *accountRecord) { r.Balance = 2 * MiB },
			items: []checked{item(0, "s1", live, 1*MiB+1)},
			want:  want{applied: 1*MiB + 1, balance: 1*MiB - 1, frozen: true, froze: true},
		},
		{
			name: "expired beyond grace is late",
			items: []checked{
				item(0, "old", voucher(64*MiB, 16*MiB, now.Add(-25*time.Hour)), 1*MiB),
				item(1, "s1", live, 1*MiB),
			},
			want: want{applied: 1 * MiB, late: 1, balance: 99 * MiB},
		},
		{
			name:  "expired within grace still settles",
			items: []checked{item(0, "s2", voucher(64*MiB, 16*MiB, now.Add(-23*time.Hour)), 1*MiB)},
			want:  want{applied: 1 * MiB, balance: 99 * MiB},
		},
		{
			name: "settling under a held voucher releases as much of the hold",
			rec: func(r *accountRecord) {
				hold(r, "s1", live, 64*MiB)
				hold(r, "s2", live, 64*MiB)
			},
			items: []checked{item(0, "s1", live, 5*MiB)},
			want:  want{applied: 5 * MiB, balance: 95 * MiB, held: 123 * MiB},
		},
		{
			name: "a hold is never released beyond what the voucher holds",
			rec: func(r *accountRecord) {
				hold(r, "s1", live, 64*MiB)
				r.Sessions["s1"].Held = 2 * MiB // the rest paid to other nodes
				r.Sessions["s1"].Total = 62 * MiB
				r.Sessions["s1"].Nodes = map[string]uint64{peer: 16 * MiB, "nC": 16 * MiB, "nD": 16 * MiB, "nE": 14 * MiB}
				r.Held[holdBucket(live.Expires.Unix())].Bytes = 2 * MiB
				hold(r, "s2", live, 64*MiB)
			},
			items: []checked{item(0, "s1", live, 5*MiB)},
			want:  want{applied: 2 * MiB, unpayable: 3 * MiB, balance: 98 * MiB, held: 64 * MiB},
		},
		{
			name: "an expired voucher holds nothing; its receipts still settle within grace",
			rec: func(r *accountRecord) {
				hold(r, "s3", voucher(64*MiB, 16*MiB, now.Add(-time.Hour)), 64*MiB)
			},
			items: []checked{item(0, "s3", voucher(64*MiB, 16*MiB, now.Add(-time.Hour)), 1*MiB)},
			want:  want{applied: 1 * MiB, balance: 99 * MiB},
		},
		{
			name: "an expired voucher settles only out of funds unexpired vouchers do not hold",
			rec: func(r *accountRecord) {
				r.Balance = 70 * MiB
				hold(r, "s1", live, 64*MiB)
			},
			items: []checked{item(0, "s3", voucher(64*MiB, 16*MiB, now.Add(-time.Hour)), 16*MiB)},
			want:  want{applied: 6 * MiB, deferred: 10 * MiB, balance: 64 * MiB, held: 64 * MiB},
		},
		{
			name:  "an expired voucher never takes the balance below zero",
			rec:   func(r *accountRecord) { r.Balance = 0 },
			items: []checked{item(0, "s3", voucher(64*MiB, 16*MiB, now.Add(-time.Hour)), 1*MiB)},
			want:  want{deferred: 1 * MiB, balance: 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &accountRecord{Name: "acme", Balance: 100 * MiB, FreezeBelow: 1 * MiB,
				Sessions: map[string]*sessionRecord{}, Paid: map[string]uint64{}, Sites: map[string]*SiteSpend{}, ChargeSeq: map[string]uint64{},
				Held: map[int64]*heldBucket{}}
			if tc.rec != nil {
				tc.rec(rec)
			}
			before := rec.clone()
			next, o := rules.apply(rec, node, tc.items, now)
			var got want
			got.applied, got.late, got.balance, got.frozen, got.froze = o.applied, len(o.late), next.Balance, next.Frozen, o.froze
			got.held, _ = next.heldAt(now.Unix())
			for _, ir := range o.items {
				got.unpayable += ir.Unpayable
				got.deferred += ir.Deferred
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			// Conservation: the account is debited what the node is
			// credited, and the site is charged the same.
			if paid := next.Paid[node] - before.Paid[node]; paid != o.applied || uint64(before.Balance-next.Balance) != o.applied ||
				next.Spent-before.Spent != o.applied {
				t.Fatalf("paid %d, debited %d, spent %d, applied %d", paid, before.Balance-next.Balance, next.Spent-before.Spent, o.applied)
			}
			if o.applied > 0 && (next.Sites["blog"].Nodes != o.applied || o.bySite["blog"] != o.applied) {
				t.Fatalf("site spend %+v, %v; applied %d", next.Sites["blog"], o.bySite, o.applied)
			}
			// No session pays any node beyond its voucher's cap, nor in
			// all beyond its budget.
			for vid, s := range next.Sessions {
				var sum uint64
				for n, b := range s.Nodes {
					if b > 16*MiB {
						t.Fatalf("session %s paid node %s %d bytes", vid, n, b)
					}
					sum += b
				}
				if sum != s.Total || s.Total > s.Budget {
					t.Fatalf("session %s: total %d, nodes %d, budget %d", vid, s.Total, sum, s.Budget)
				}
			}
			// The input record is untouched.
			if rec.Balance != before.Balance || len(rec.Sessions) != len(before.Sessions) || rec.Paid[node] != before.Paid[node] {
				t.Fatal("apply changed its input record")
			}
			// The same batch again on the result applies nothing.
			if _, again := rules.apply(next, node, tc.items, now); again.applied != 0 {
				t.Fatalf("replay applied %d", again.applied)
			}
		})
	}
}

// Sessions past expiry + grace + margin are forgotten; younger ones kept.
func TestSettleApplyPrunes(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rules := settleRules{grace: 24 * time.Hour, pruneMargin: time.Hour, maxOverdraft: 1 << 30}
	rec := &accountRecord{Balance: 1 << 30, Sessions: map[string]*sessionRecord{
		"gone": {Expires: now.Add(-26 * time.Hour).Unix(), Budget: 1, Nodes: map[string]uint64{}},
		"kept": {Expires: now.Add(-24 * time.Hour).Unix(), Budget: 1, Nodes: map[string]uint64{}},
	}}
	next, _ := rules.apply(rec, "n", nil, now)
	if _, ok := next.Sessions["gone"]; ok {
		t.Fatal("expired session kept")
	}
	if _, ok := next.Sessions["kept"]; !ok {
		t.Fatal("session within grace + margin dropped")
	}
}
