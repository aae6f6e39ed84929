package s3api

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// Storage billing. Every StorageInterval each gateway looks at every
// bucket; the one that advances the bucket's billing clock (a
// compare-and-set on its record) charges the account for the bytes its
// keys hold times the time since the clock last moved, at
// StoragePrice balance bytes per GiB stored for 30 days. The charge is
// first recorded in the bucket's record as pending, with a sequence
// number, then applied to the ledger under a charger name of its own
// ("s3-storage/<bucket>"), whose sequence makes a retry (by this or
// another gateway, after a crash) a replay that applies nothing. So a
// bucket is billed once per interval whatever the number of gateways.

// Charger debits an account: the coordinator's *ledger.Ledger.
type Charger interface {
	ApplyCharge(ctx context.Context, c ledger.Charge) (ledger.ChargeResult, error)
}

// Accounts reads an account's standing: the coordinator's
// *ledger.Ledger.
type Accounts interface {
	Account(ctx context.Context, name string) (ledger.Account, error)
}

// ErrAccountProblem refuses a write from a frozen account (S3's code for
// an account that may not do what it asks).
var ErrAccountProblem = &Error{Code: "AccountProblem", Status: 403, Message: "The account is frozen (its balance is below its threshold): top it up to store objects again. Reading and deleting still work."}

// checkWriter refuses writes for a frozen account, when Accounts is set.
func (s *Server) checkWriter(ctx context.Context, who identity) error {
	if s.cfg.Accounts == nil {
		return nil
	}
	a, err := s.cfg.Accounts.Account(ctx, who.Account)
	if err != nil {
		return err
	}
	if a.Frozen {
		return ErrAccountProblem
	}
	return nil
}

// billing is a bucket's billing clock, in its record.
type billing struct {
	Until        time.Time `json:"until"`                  // billed up to here
	PendingSeq   uint64    `json:"pendingSeq,omitempty"`   // a charge recorded, maybe not applied yet
	PendingBytes uint64    `json:"pendingBytes,omitempty"` // its amount
	// Held is what the bucket held since Until under the indexes it had
	// before AccruedAt, in byte-nanoseconds (a decimal integer): each
	// change adds what the index it replaces held, so bytes stored and
	// deleted between two runs are billed too.
	Held      string    `json:"held,omitempty"`
	AccruedAt time.Time `json:"accruedAt,omitzero"`
}

// objectsSize is the bytes objs hold, as S3 counts them.
func objectsSize(objs map[string]*object) int64 {
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	return size
}

// held is what rec holds in byte-nanoseconds from its billing clock to
// now: what its earlier indexes held (Held), and its index since the
// last change.
func (b billing) held(created, now time.Time, size int64) *big.Int {
	h, ok := new(big.Int).SetString(b.Held, 10)
	if !ok {
		h = new(big.Int)
	}
	from := b.AccruedAt
	if b.Until.After(from) {
		from = b.Until
	}
	if from.IsZero() {
		from = created
	}
	if d := now.Sub(from); d > 0 && size > 0 {
		h.Add(h, new(big.Int).Mul(big.NewInt(size), big.NewInt(int64(d))))
	}
	return h
}

// accrue adds to next's billing what its index before the change (prev)
// held since the last change or run.
func (s *Server) accrue(prev, next *bucketRecord) {
	now := s.cfg.Now().UTC()
	next.Billing.Held = prev.Billing.held(prev.Created, now, prev.size()).String()
	next.Billing.AccruedAt = now
}

const (
	gib         = 1 << 30
	billingDays = 30
)

// storageCharge is what size bytes stored for d cost at price balance
// bytes per GiB-30-days, rounded down.
func storageCharge(size int64, d time.Duration, price uint64) uint64 {
	if size <= 0 || d <= 0 || price == 0 {
		return 0
	}
	return heldCharge(new(big.Int).Mul(big.NewInt(size), big.NewInt(int64(d))), price)
}

// heldCharge is what held byte-nanoseconds cost at price balance bytes
// per GiB-30-days, rounded down.
func heldCharge(held *big.Int, price uint64) uint64 {
	if held.Sign() <= 0 || price == 0 {
		return 0
	}
	n := new(big.Int).Mul(held, new(big.Int).SetUint64(price))
	n.Quo(n, new(big.Int).Mul(big.NewInt(gib), big.NewInt(int64(billingDays*24*time.Hour))))
	if !n.IsUint64() {
		return 1 << 62
	}
	return n.Uint64()
}

func chargerName(bucket string) string { return "s3-storage/" + bucket }

// BillingLabel is how a bucket appears among an account's sites in its
// statement and dashboard.
func BillingLabel(bucket string) string { return "s3:" + bucket }

// runBilling bills every bucket each StorageInterval until ctx ends.
func (s *Server) runBilling(ctx context.Context) {
	t := time.NewTicker(s.cfg.StorageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lister, err := s.buckets.ListKeys(ctx)
		if err != nil {
			if !errors.Is(err, jetstream.ErrNoKeysFound) && ctx.Err() == nil {
				s.log.Warn("s3 billing: list buckets", "err", err)
			}
			continue
		}
		for name := range lister.Keys() {
			if err := s.bill(ctx, name); err != nil && ctx.Err() == nil {
				s.log.Warn("s3 billing", "bucket", name, "err", err)
			}
		}
		lister.Stop()
	}
}

// bill applies bucket's pending charge, if any, then moves its clock to
// now and applies what that time cost.
func (s *Server) bill(ctx context.Context, bucket string) error {
	for range 2 { // the pending charge left by a crash, then the new one
		var account string
		var pending billing
		now := s.cfg.Now().UTC()
		mu, _ := s.locks.LoadOrStore(bucket, new(sync.Mutex))
		mu.(*sync.Mutex).Lock()
		_, err := events.Update(ctx, s.buckets, bucket, func(old []byte) ([]byte, error) {
			pending = billing{}
			if old == nil {
				return nil, events.ErrNoChange // deleted
			}
			rec, err := decodeRecord(old)
			if err != nil {
				return nil, err
			}
			account = rec.Account
			if rec.Billing.PendingSeq != 0 {
				pending = rec.Billing
				return nil, events.ErrNoChange
			}
			if rec.Billing.Until.IsZero() {
				rec.Billing.Until = rec.Created
			}
			held := rec.Billing.held(rec.Created, now, rec.size())
			charge := heldCharge(held, s.cfg.StoragePrice)
			if charge == 0 {
				if held.Sign() == 0 {
					rec.Billing = billing{Until: now} // nothing stored: nothing owed
					return encodeRecord(rec)
				}
				return nil, events.ErrNoChange // not a byte yet: let time add up
			}
			rec.Billing = billing{Until: now, PendingSeq: uint64(now.UnixNano()), PendingBytes: charge}
			pending = rec.Billing
			return encodeRecord(rec)
		})
		mu.(*sync.Mutex).Unlock()
		if err != nil || pending.PendingSeq == 0 {
			return err
		}
		if _, err := s.cfg.Charges.ApplyCharge(ctx, ledger.Charge{
			Account: account, Gateway: chargerName(bucket), Seq: pending.PendingSeq,
			Sites: map[string]uint64{BillingLabel(bucket): pending.PendingBytes},
		}); err != nil {
			return err
		}
		mu.(*sync.Mutex).Lock()
		_, err = events.Update(ctx, s.buckets, bucket, func(old []byte) ([]byte, error) {
			if old == nil {
				return nil, events.ErrNoChange
			}
			rec, err := decodeRecord(old)
			if err != nil {
				return nil, err
			}
			if rec.Billing.PendingSeq != pending.PendingSeq {
				return nil, events.ErrNoChange
			}
			rec.Billing.PendingSeq, rec.Billing.PendingBytes = 0, 0
			return encodeRecord(rec)
		})
		mu.(*sync.Mutex).Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
