package ledger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// checked is a batch item that passed verification.
type checked struct {
	index   int
	vid     string
	voucher payment.Voucher
	receipt payment.Receipt
}

// verify checks every item's voucher and receipt signatures, account,
// node and expiry (with SettleGrace). It keeps the highest-sequence item
// per session.
func (l *Ledger) verify(b *nodeproto.Batch, now time.Time, refuse func(payment.Voucher) error) ([]checked, []*ItemError) {
	var (
		ok  []checked
		bad []*ItemError
		at  = make(map[payment.SessionKey]int)
	)
	for i, it := range b.Items {
		v, err := payment.ParseVoucher(it.Voucher)
		if err == nil {
			err = v.VerifySignature(l.cfg.Keys)
		}
		if err == nil && v.Account != b.Account {
			err = ErrWrongAccount
		}
		if err == nil && !now.Before(v.Expires.Add(l.cfg.SettleGrace)) {
			err = &payment.Error{Op: "voucher", Field: "expires", Err: payment.ErrExpired}
		}
		var r payment.Receipt
		if err == nil {
			err = r.UnmarshalBinary(it.Receipt)
		}
		if err == nil {
			err = r.Verify(&v, v.ID(), b.Node)
		}
		if err == nil && refuse != nil {
			err = refuse(v)
		}
		if err != nil {
			bad = append(bad, &ItemError{Index: i, Err: err})
			continue
		}
		c := checked{index: i, vid: v.ID().String(), voucher: v, receipt: r}
		if j, dup := at[v.Session]; dup {
			if r.Seq > ok[j].receipt.Seq {
				ok[j] = c
			}
			continue
		}
		at[v.Session] = len(ok)
		ok = append(ok, c)
	}
	return ok, bad
}

// Settle verifies a batch and applies it once: for each session it debits
// the account and credits the node only the increase of the receipt over
// what was already settled to this node for this session, capped by the
// voucher's budget over all nodes and by the overdraft bound. Replaying a
// batch, or a batch overlapping an earlier one, applies nothing twice; two
// nodes settling the same session concurrently are serialised by
// compare-and-set on the account record.
//
// Items that fail verification are refused and reported in a
// *RejectedError, while the others are applied and reported in the
// result. The batch and result types are the node protocol's
// (internal/nodeproto): nodes submit batches over their coordinator
// WebSocket and get the result back unchanged. Settle emits receipts.settled when it applied anything, and
// account.frozen when the account crossed its freezing threshold.
func (l *Ledger) Settle(ctx context.Context, b nodeproto.Batch) (nodeproto.SettleResult, error) {
	return l.SettleRefusing(ctx, b, nil)
}

// SettleRefusing is Settle that also asks refuse, when set, about the
// voucher of every item that verifies: an error refuses the item, reported
// in the *RejectedError with it (the coordinator refuses vouchers for a
// root whose holding the node lost).
func (l *Ledger) SettleRefusing(ctx context.Context, b nodeproto.Batch, refuse func(payment.Voucher) error) (nodeproto.SettleResult, error) {
	if err := l.check(); err != nil {
		return nodeproto.SettleResult{}, err
	}
	node := b.Node.String()
	res := nodeproto.SettleResult{Account: b.Account, Node: node}
	if len(b.Items) == 0 || len(b.Items) > l.cfg.MaxBatchItems {
		return res, fmt.Errorf("%w: %d items", ErrInvalidBatch, len(b.Items))
	}
	if !payment.ValidAccount(b.Account) {
		return res, fmt.Errorf("%w: %q", ErrInvalidAccount, b.Account)
	}
	items, rejected := l.verify(&b, l.cfg.Now(), refuse)
	sort.Slice(items, func(i, j int) bool { return items[i].index < items[j].index })

	rules := settleRules{grace: l.cfg.SettleGrace, pruneMargin: l.cfg.PruneMargin, maxOverdraft: l.cfg.MaxOverdraft}
	var (
		out *accountRecord
		o   settleOutcome
	)
	vids := make([]string, len(items))
	for i, c := range items {
		vids[i] = c.vid
	}
	rev, err := l.applyAtomic(ctx, b.Account, vids, false, func(rec *accountRecord, now time.Time) (*accountRecord, bool) {
		// fn may run several times: every attempt starts from the
		// records as stored.
		out, o = rules.apply(rec, node, items, now)
		if o.applied == 0 {
			out = nil
			return nil, false
		}
		return out, true
	})
	if err != nil {
		return res, err
	}
	rejected = append(rejected, o.late...)
	res.Items = o.items
	res.Revision = rev
	res.Applied = o.applied
	if out != nil && res.Applied > 0 {
		res.Balance, res.Frozen = out.Balance, out.Frozen
		if err := l.creditNode(ctx, node, b.Account, out.Paid[node]); err != nil {
			// The account record is the truth; the mirror catches up at
			// the node's next settlement with this account.
			l.log.Warn("node credit deferred", "node", node, "account", b.Account, "err", err)
		}
		l.emit(ctx, events.TypeReceiptsSettled, b.Account, rev, events.ReceiptsSettled{
			Account: b.Account, Node: node, Bytes: res.Applied, Sessions: countApplied(o.items),
			Sites: o.bySite, Balance: out.Balance, Revision: rev})
		l.record(ctx, b.Account, StatementEntry{Type: EntrySettle, Bytes: res.Applied, Node: node,
			Sites: o.bySite, Balance: out.Balance, Revision: rev})
		if o.froze {
			l.emit(ctx, events.TypeAccountFrozen, b.Account, rev, events.AccountFrozen{
				Account: b.Account, Balance: out.Balance, Threshold: out.FreezeBelow, Revision: rev})
		}
	} else if acct, err := l.Account(ctx, b.Account); err == nil {
		res.Balance, res.Frozen, res.Revision = acct.Balance, acct.Frozen, acct.Revision
		// Nothing new: still bring the node's mirror up to date, in case
		// an earlier call stopped between the two writes.
		if err := l.syncNode(ctx, node, b.Account); err != nil {
			l.log.Warn("node credit deferred", "node", node, "account", b.Account, "err", err)
		}
	}
	if len(rejected) > 0 {
		sort.Slice(rejected, func(i, j int) bool { return rejected[i].Index < rejected[j].Index })
		return res, &RejectedError{Items: rejected}
	}
	return res, nil
}

// syncNode copies the account's cumulative payment to node into the
// node's earnings.
func (l *Ledger) syncNode(ctx context.Context, node, account string) error {
	e, err := l.kv.Get(ctx, AccountKey(account))
	if err != nil {
		return err
	}
	rec, err := decodeAccount(e.Value())
	if err != nil {
		return err
	}
	if p := rec.Paid[node]; p > 0 {
		return l.creditNode(ctx, node, account, p)
	}
	return nil
}

func siteKey(site string) string {
	if site == "" {
		return NoSite
	}
	return site
}

func countApplied(items []nodeproto.ItemResult) int {
	n := 0
	for _, it := range items {
		if it.Applied > 0 {
			n++
		}
	}
	return n
}

// applyAtomic reads the account's totals and the sessions vids, runs fn
// on them and writes the account and every session fn changed in one
// atomic batch, a compare-and-set of each key; on a conflict it reads
// again and retries. fn returns false to write nothing. It returns the
// account's revision after the write. With fresh, the first attempt
// assumes the sessions do not exist yet (new vouchers being held) and
// does not read them; a conflict then reads them.
//
// Within one Ledger the writes to an account are serialised (its
// settlements and holds would otherwise conflict with each other and
// retry); the compare-and-set still orders them against other Ledgers.
// Sessions are read before taking that lock, concurrently.
func (l *Ledger) applyAtomic(ctx context.Context, account string, vids []string, fresh bool, fn func(*accountRecord, time.Time) (*accountRecord, bool)) (uint64, error) {
	vids = uniq(vids)
	for attempt := 0; attempt < events.MaxUpdateAttempts; attempt++ {
		if attempt >= 2 {
			backoff(ctx, attempt)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		seqs := make([]uint64, len(vids))
		sess := make([]*sessionRecord, len(vids))
		if !fresh || attempt > 0 {
			if err := l.readSessions(ctx, vids, seqs, sess); err != nil {
				return 0, err
			}
		}
		rev, err := l.applyLocked(ctx, account, vids, seqs, sess, fn)
		if errors.Is(err, errConflict) {
			continue
		}
		return rev, err
	}
	return 0, events.ErrConflict
}

// applyLocked is one attempt of applyAtomic, under the account's lock.
func (l *Ledger) applyLocked(ctx context.Context, account string, vids []string, seqs []uint64, sess []*sessionRecord, fn func(*accountRecord, time.Time) (*accountRecord, bool)) (uint64, error) {
	mu := l.accountLock(account)
	mu.Lock()
	defer mu.Unlock()
	val, aseq, err := l.readKey(ctx, AccountKey(account))
	if err != nil {
		return 0, err
	}
	if val == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownAccount, account)
	}
	rec, err := decodeAccount(val)
	if err != nil {
		return 0, fmt.Errorf("ledger: account %s: %w", account, err)
	}
	for i, vid := range vids {
		if sess[i] != nil {
			rec.Sessions[vid] = sess[i]
		}
	}
	now := l.cfg.Now()
	out, ok := fn(rec, now)
	if !ok {
		return aseq, nil
	}
	ws := make([]write, 0, len(vids)+1)
	for i, vid := range vids {
		sr, old := out.Sessions[vid], rec.Sessions[vid]
		if sr == nil || (old != nil && sameSession(old, sr)) {
			continue
		}
		v, _ := json.Marshal(sr)
		ws = append(ws, write{key: sessionKey(vid), value: v, expect: seqs[i], ttl: l.sessionTTL(sr.Expires, now)})
	}
	v, _ := json.Marshal(out)
	ws = append(ws, write{key: AccountKey(account), value: v, expect: aseq})
	return l.commit(ctx, ws)
}

// readSessions reads the session keys vids into seqs and sess (nil for
// none), a few at a time concurrently.
func (l *Ledger) readSessions(ctx context.Context, vids []string, seqs []uint64, sess []*sessionRecord) error {
	const readers = 8
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range min(readers, len(vids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(vids); i = int(next.Add(1) - 1) {
				v, sq, err := l.readKey(ctx, sessionKey(vids[i]))
				if err == nil && v != nil {
					var sr sessionRecord
					if err = json.Unmarshal(v, &sr); err == nil {
						if sr.Nodes == nil {
							sr.Nodes = map[string]uint64{}
						}
						sess[i] = &sr
					}
				}
				if err != nil {
					errMu.Lock()
					first = cmp.Or(first, fmt.Errorf("ledger: session %s: %w", vids[i], err))
					errMu.Unlock()
					return
				}
				seqs[i] = sq
			}
		}()
	}
	wg.Wait()
	return first
}

func uniq(vids []string) []string {
	seen := make(map[string]bool, len(vids))
	out := vids[:0:0]
	for _, v := range vids {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// sessionTTL is how long a session's key lives: until its voucher's
// expiry + SettleGrace + PruneMargin, when no receipt of it can settle.
func (l *Ledger) sessionTTL(expires int64, now time.Time) time.Duration {
	return max(time.Unix(expires, 0).Add(l.cfg.SettleGrace+l.cfg.PruneMargin).Sub(now), time.Second)
}

func sameSession(a, b *sessionRecord) bool {
	return a.Total == b.Total && a.Held == b.Held && maps.Equal(a.Nodes, b.Nodes)
}

// backoff waits a little, more after more attempts, to spread writers
// contending for one account.
func backoff(ctx context.Context, attempt int) {
	t := time.NewTimer(time.Duration(rand.IntN(attempt*500)) * time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// accountLock returns the mutex serialising this Ledger's writes to an
// account. Locks are never dropped: one per account the coordinator
// writes, a few bytes each.
func (l *Ledger) accountLock(account string) *sync.Mutex {
	m, _ := l.locks.LoadOrStore(account, new(sync.Mutex))
	return m.(*sync.Mutex)
}
