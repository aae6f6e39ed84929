package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// holdBatch is the most holds one atomic batch takes (each is a session
// key; the account is the last message).
const holdBatch = maxAtomicBatch - 1

// holdReq is one Hold waiting for its account's next batch.
type holdReq struct {
	vid     string
	budget  uint64
	expires int64
	done    chan error
}

// holdQueues coalesces concurrent Holds per account: while one batch is
// being written, the next ones queue, and are written together in the
// next atomic batch (a group commit), so holds on one account cost one
// compare-and-set per batch rather than one per voucher.
type holdQueues struct {
	mu sync.Mutex
	q  map[string][]*holdReq // account → pending; present while a drainer runs
}

// Hold reserves a voucher's budget on its account until the voucher
// expires: the account's available funds (balance − what unexpired
// vouchers hold) must cover it, else ErrInsufficientFunds; a frozen
// account gets payment.ErrAccountFrozen. What settles under the voucher
// releases as much of the hold, and the rest lapses at expiry without a
// write (Account.Held counts only unexpired vouchers). Holding the same
// voucher id again is a no-op. The gateway holds every voucher it issues,
// so issued but unsettled vouchers cannot promise more than the balance.
//
// Concurrent Holds on one account are written together, up to 999 per
// atomic batch. When ctx ends first the hold may still be taken; it then
// lapses at expiry.
func (l *Ledger) Hold(ctx context.Context, account string, id payment.VoucherID, budget uint64, expires time.Time) error {
	if err := l.check(); err != nil {
		return err
	}
	if !payment.ValidAccount(account) {
		return fmt.Errorf("%w: %q", ErrInvalidAccount, account)
	}
	if budget == 0 || budget > MaxAmount {
		return fmt.Errorf("%w: hold of %d bytes", ErrInvalidBatch, budget)
	}
	r := &holdReq{vid: id.String(), budget: budget, expires: expires.Unix(), done: make(chan error, 1)}
	l.holds.mu.Lock()
	if l.holds.q == nil {
		l.holds.q = make(map[string][]*holdReq)
	}
	pending, running := l.holds.q[account]
	l.holds.q[account] = append(pending, r)
	l.holds.mu.Unlock()
	if !running {
		go l.drainHolds(account)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drainHolds writes account's pending holds, a batch at a time, until
// none is left.
func (l *Ledger) drainHolds(account string) {
	for {
		l.holds.mu.Lock()
		pending := l.holds.q[account]
		if len(pending) == 0 {
			delete(l.holds.q, account)
			l.holds.mu.Unlock()
			return
		}
		n := min(len(pending), holdBatch)
		batch := pending[:n:n]
		l.holds.q[account] = pending[n:]
		l.holds.mu.Unlock()
		errs := l.holdBatch(account, batch)
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// holdBatch takes the holds of batch. It first assumes the vouchers are
// new and does not read their session keys (a voucher already held makes
// the write conflict, which reads them); a hold refused for want of funds
// is tried again reading its key, since it may be one already held.
func (l *Ledger) holdBatch(account string, batch []*holdReq) []error {
	errs := l.holdOnce(account, batch, true)
	var again []*holdReq
	var at []int
	for i, err := range errs {
		if errors.Is(err, ErrInsufficientFunds) {
			again, at = append(again, batch[i]), append(at, i)
		}
	}
	if len(again) > 0 {
		for j, err := range l.holdOnce(account, again, false) {
			errs[at[j]] = err
		}
	}
	return errs
}

// holdOnce takes the holds of batch in one atomic batch.
func (l *Ledger) holdOnce(account string, batch []*holdReq, fresh bool) []error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(batch))
	vids := make([]string, len(batch))
	for i, r := range batch {
		vids[i] = r.vid
	}
	_, err := l.applyAtomic(ctx, account, vids, fresh, func(rec *accountRecord, now time.Time) (*accountRecord, bool) {
		rec = rec.clone()
		rec.pruneHeld(now.Unix())
		held, _ := rec.heldAt(now.Unix())
		avail := rec.Balance - int64(held)
		changed := false
		for i, r := range batch {
			errs[i] = nil
			switch {
			case rec.Sessions[r.vid] != nil:
				continue // held already
			case rec.Frozen:
				errs[i] = &payment.Error{Op: "hold", Field: "account", Err: payment.ErrAccountFrozen}
			case r.expires <= now.Unix():
				errs[i] = &payment.Error{Op: "hold", Field: "expires", Err: payment.ErrExpired}
			case avail < int64(r.budget):
				errs[i] = fmt.Errorf("%w: %q has a balance of %d bytes, %d held, voucher needs %d", ErrInsufficientFunds, account, rec.Balance, held, r.budget)
			default:
				avail -= int64(r.budget)
				held += r.budget
				rec.Sessions[r.vid] = &sessionRecord{Account: account, Expires: r.expires, Budget: r.budget, Held: r.budget, Nodes: map[string]uint64{}}
				b := rec.Held[holdBucket(r.expires)]
				if b == nil {
					b = &heldBucket{}
					rec.Held[holdBucket(r.expires)] = b
				}
				b.Bytes += r.budget
				b.Sessions++
				changed = true
			}
		}
		return rec, changed
	})
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// ReleaseHold releases what a voucher still holds on its account (when
// its session ended before its budget was spent). Receipts under it still
// settle, within the overdraft bound, until expiry + SettleGrace.
func (l *Ledger) ReleaseHold(ctx context.Context, account string, id payment.VoucherID) error {
	if err := l.check(); err != nil {
		return err
	}
	if !payment.ValidAccount(account) {
		return fmt.Errorf("%w: %q", ErrInvalidAccount, account)
	}
	vid := id.String()
	_, err := l.applyAtomic(ctx, account, []string{vid}, false, func(rec *accountRecord, now time.Time) (*accountRecord, bool) {
		s := rec.Sessions[vid]
		if s == nil || s.Held == 0 {
			return nil, false
		}
		rec = rec.clone()
		s = rec.Sessions[vid]
		rec.release(s.Expires, s.Held, true)
		s.Held = 0
		return rec, true
	})
	return err
}
