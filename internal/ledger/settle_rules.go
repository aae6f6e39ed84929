package ledger

import (
	"maps"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// settleRules is the money arithmetic of settlement, apart from storage:
// Settle verifies a batch (signatures, account, node), then runs apply
// inside its compare-and-set loop on the record as stored.
type settleRules struct {
	grace        time.Duration // Config.SettleGrace
	pruneMargin  time.Duration // Config.PruneMargin
	maxOverdraft int64         // Config.MaxOverdraft, normalised (≥ 0)
}

// settleOutcome is what apply did.
type settleOutcome struct {
	items   []nodeproto.ItemResult // one per item applied or replayed, in order
	late    []*ItemError           // items whose voucher expired (with grace) at now
	bySite  map[string]uint64      // bytes newly settled per voucher site (NoSite for none)
	applied uint64                 // bytes newly settled in all
	froze   bool                   // the account crossed its freezing threshold
}

// apply settles the verified items of node against rec at now and
// returns the new record; rec is not changed. For each item it credits
// only the increase of the receipt over what this node was already paid
// for the session, and caps it, in this order:
//
//   - by the voucher's per-node cap (payment.Voucher.Cap): what would take
//     the node beyond it is Unpayable;
//   - by the voucher's budget over all nodes: the excess is Unpayable;
//   - by the overdraft bound (balance ≥ −maxOverdraft): the excess is
//     Deferred (settled after a top-up);
//   - once the voucher expired (its hold lapsed), by the available funds
//     instead (balance − what unexpired vouchers hold, never below zero):
//     the excess is Deferred.
//
// What it pays under a voucher that holds funds (Ledger.Hold) releases as
// much of the hold.
//
// A replayed or older receipt applies nothing; an item whose voucher
// expired more than grace ago is late. A frozen account still pays what
// its nodes served (they served before they learned of the freeze), within
// the same bounds; an account that falls below its threshold is frozen.
// Sessions past expiry + grace + pruneMargin are dropped.
func (r settleRules) apply(rec *accountRecord, node string, items []checked, now time.Time) (*accountRecord, settleOutcome) {
	rec = rec.clone()
	o := settleOutcome{bySite: map[string]uint64{}}
	for _, c := range items {
		if !now.Before(c.voucher.Expires.Add(r.grace)) {
			o.late = append(o.late, &ItemError{Index: c.index, Err: &payment.Error{Op: "voucher", Field: "expires", Err: payment.ErrExpired}})
			continue
		}
		s := rec.Sessions[c.vid]
		if s == nil {
			s = &sessionRecord{Account: rec.Name, Expires: c.voucher.Expires.Unix(), Budget: c.voucher.Budget, Nodes: map[string]uint64{}}
			rec.Sessions[c.vid] = s
		}
		ir := nodeproto.ItemResult{Index: c.index, Session: c.voucher.Session, Settled: s.Nodes[node]}
		if claim := c.receipt.Bytes; claim > ir.Settled {
			if cp := c.voucher.Cap(); claim > cp {
				ir.Unpayable = claim - max(cp, ir.Settled)
				claim = max(cp, ir.Settled)
			}
			inc := claim - ir.Settled
			if room := s.Budget - min(s.Total, s.Budget); inc > room {
				ir.Unpayable += inc - room
				inc = room
			}
			room := rec.Balance + r.maxOverdraft
			if !now.Before(c.voucher.Expires) {
				// The voucher's hold lapsed at its expiry (what the
				// record still shows of it lapses within the minute):
				// it is paid only out of funds no unexpired voucher
				// holds, never into the overdraft, else a client could
				// sign away vouchers past their holds and make the
				// account pay what it promised to the nodes of its
				// live vouchers.
				if s.Held > 0 {
					rec.release(s.Expires, s.Held, true)
					s.Held = 0
				}
				held, _ := rec.heldAt(now.Unix())
				room = rec.Balance - int64(min(held, MaxAmount))
			}
			if room < 0 || inc > uint64(room) {
				allowed := uint64(max(room, 0))
				ir.Deferred = inc - allowed
				inc = allowed
			}
			s.Nodes[node] += inc
			s.Total += inc
			rec.Balance -= int64(inc)
			rec.Spent += inc
			rec.Paid[node] += inc
			if h := min(inc, s.Held); h > 0 {
				// What the voucher held is now paid: release it.
				s.Held -= h
				rec.release(s.Expires, h, s.Held == 0)
			}
			if inc > 0 {
				rec.site(c.voucher.Site).Nodes += inc
				o.bySite[siteKey(c.voucher.Site)] += inc
			}
			ir.Settled += inc
			ir.Applied = inc
			o.applied += inc
		}
		o.items = append(o.items, ir)
	}
	r.prune(rec, now)
	rec.pruneHeld(now.Unix())
	if o.applied > 0 && !rec.Frozen && rec.Balance < rec.FreezeBelow {
		rec.Frozen, o.froze = true, true
	}
	return rec, o
}

// release lowers the hold of the vouchers expiring at expires by n (and
// their count when the voucher's hold is spent).
func (r *accountRecord) release(expires int64, n uint64, spent bool) {
	b := r.Held[holdBucket(expires)]
	if b == nil {
		return // already lapsed
	}
	b.Bytes -= min(b.Bytes, n)
	if spent && b.Sessions > 0 {
		b.Sessions--
	}
	if b.Bytes == 0 && b.Sessions == 0 {
		delete(r.Held, holdBucket(expires))
	}
}

// prune drops the state of sessions whose receipts can no longer be
// settled anywhere: voucher expiry + grace + pruneMargin passed.
func (r settleRules) prune(rec *accountRecord, now time.Time) {
	cut := now.Add(-r.grace - r.pruneMargin).Unix()
	for k, s := range rec.Sessions {
		if s.Expires < cut {
			delete(rec.Sessions, k)
		}
	}
}

// clone returns a deep copy of r.
func (r *accountRecord) clone() *accountRecord {
	c := *r
	c.Sessions = make(map[string]*sessionRecord, len(r.Sessions))
	for k, s := range r.Sessions {
		cs := *s
		cs.Nodes = maps.Clone(s.Nodes)
		if cs.Nodes == nil {
			cs.Nodes = map[string]uint64{}
		}
		c.Sessions[k] = &cs
	}
	c.Paid = maps.Clone(r.Paid)
	if c.Paid == nil {
		c.Paid = map[string]uint64{}
	}
	c.Sites = make(map[string]*SiteSpend, len(r.Sites))
	for k, s := range r.Sites {
		cs := *s
		c.Sites[k] = &cs
	}
	c.Held = make(map[int64]*heldBucket, len(r.Held))
	for k, b := range r.Held {
		cb := *b
		c.Held[k] = &cb
	}
	c.ChargeSeq = maps.Clone(r.ChargeSeq)
	if c.ChargeSeq == nil {
		c.ChargeSeq = map[string]uint64{}
	}
	return &c
}
