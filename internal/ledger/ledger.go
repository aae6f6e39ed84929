package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/payment"
)

// Ledger holds accounts and node earnings in NATS KV and applies
// settlement batches. Its methods are safe for concurrent use, also by
// several Ledgers (several coordinators) on the same bus.
type Ledger struct {
	cfg      Config
	log      *slog.Logger
	bus      *events.Bus
	kv       jetstream.KeyValue // BucketLedger
	stream   jetstream.Stream   // its stream, for reads with sequence and atomic batches
	earnings jetstream.KeyValue
	holds    holdQueues
	locks    sync.Map // account → *sync.Mutex (accountLock)
	closed   atomic.Bool
}

// New creates the ledger's KV buckets if needed.
func New(ctx context.Context, cfg Config) (*Ledger, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	l := &Ledger{cfg: cfg, log: cfg.Logger.With("component", "ledger"), bus: cfg.Bus}
	js := cfg.Bus.JetStream()
	if err := l.openLedgerBucket(ctx); err != nil {
		return nil, err
	}
	l.earnings, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketEarnings, History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: KV bucket %s: %w", BucketEarnings, err)
	}
	if err := l.openStatement(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Close marks the ledger closed; it owns no goroutines and does not close
// the bus. It is idempotent.
func (l *Ledger) Close() error {
	l.closed.Store(true)
	return nil
}

func (l *Ledger) check() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// CreateAccount creates an account with a zero balance and the freezing
// threshold freezeBelow (Config.FreezeBelow when 0). A new account is
// frozen until topped up to its threshold.
func (l *Ledger) CreateAccount(ctx context.Context, name string, freezeBelow int64) (Account, error) {
	if err := l.check(); err != nil {
		return Account{}, err
	}
	if !payment.ValidAccount(name) {
		return Account{}, fmt.Errorf("%w: %q", ErrInvalidAccount, name)
	}
	if freezeBelow == 0 {
		freezeBelow = l.cfg.FreezeBelow
	}
	rec := &accountRecord{Name: name, FreezeBelow: freezeBelow, Frozen: 0 < freezeBelow, Created: l.cfg.Now().UTC()}
	b, _ := json.Marshal(rec)
	rev, err := l.kv.Create(ctx, AccountKey(name), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Account{}, fmt.Errorf("%w: %q", ErrAccountExists, name)
	}
	if err != nil {
		return Account{}, fmt.Errorf("ledger: create %s: %w", name, err)
	}
	l.record(ctx, name, StatementEntry{Type: EntryCreate, Revision: rev})
	return rec.public(rev, l.cfg.Now()), nil
}

// TopUp credits bytes to an account and unfreezes it when that brings it
// to its threshold. In development it is the faucet; in production it is
// what a payment processor calls once money arrived. A top-up of 0 bytes
// or beyond MaxAmount, or one that would take the balance beyond
// MaxAmount, is refused with ErrInvalidAmount and credits nothing.
func (l *Ledger) TopUp(ctx context.Context, name string, bytes uint64) (Account, error) {
	if err := l.check(); err != nil {
		return Account{}, err
	}
	if !payment.ValidAccount(name) {
		return Account{}, fmt.Errorf("%w: %q", ErrInvalidAccount, name)
	}
	if bytes == 0 || bytes > MaxAmount {
		return Account{}, fmt.Errorf("%w: top-up of %d bytes, want 1 to %d", ErrInvalidAmount, bytes, uint64(MaxAmount))
	}
	var (
		out      *accountRecord
		unfrozen bool
	)
	rev, err := events.Update(ctx, l.kv, AccountKey(name), func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, name)
		}
		rec, err := decodeAccount(old)
		if err != nil {
			return nil, err
		}
		if rec.Balance > MaxAmount-int64(bytes) {
			return nil, fmt.Errorf("%w: a balance of %d bytes topped up by %d would exceed %d", ErrInvalidAmount, rec.Balance, bytes, uint64(MaxAmount))
		}
		rec.Balance += int64(bytes)
		rec.ToppedUp += bytes
		unfrozen = rec.Frozen && rec.Balance >= rec.FreezeBelow
		if unfrozen {
			rec.Frozen = false
		}
		out = rec
		return json.Marshal(rec)
	})
	if err != nil {
		return Account{}, err
	}
	l.record(ctx, name, StatementEntry{Type: EntryTopUp, Bytes: bytes, Balance: out.Balance, Revision: rev})
	if unfrozen {
		l.emit(ctx, events.TypeAccountUnfrozen, name, rev, events.AccountUnfrozen{
			Account: name, Balance: out.Balance, Threshold: out.FreezeBelow, Revision: rev})
	}
	return out.public(rev, l.cfg.Now()), nil
}

// Account returns an account's published state.
func (l *Ledger) Account(ctx context.Context, name string) (Account, error) {
	if err := l.check(); err != nil {
		return Account{}, err
	}
	if !payment.ValidAccount(name) {
		return Account{}, fmt.Errorf("%w: %q", ErrInvalidAccount, name)
	}
	e, err := l.kv.Get(ctx, AccountKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Account{}, fmt.Errorf("%w: %q", ErrUnknownAccount, name)
	}
	if err != nil {
		return Account{}, fmt.Errorf("ledger: get %s: %w", name, err)
	}
	rec, err := decodeAccount(e.Value())
	if err != nil {
		return Account{}, fmt.Errorf("ledger: account %s: %w", name, err)
	}
	return rec.public(e.Revision(), l.cfg.Now()), nil
}

// Earnings returns what the ledger has credited a node (by node id).
func (l *Ledger) Earnings(ctx context.Context, node string) (Earnings, error) {
	if err := l.check(); err != nil {
		return Earnings{}, err
	}
	e, err := l.earnings.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Earnings{Node: node, From: map[string]uint64{}}, nil
	}
	if err != nil {
		return Earnings{}, fmt.Errorf("ledger: earnings %s: %w", node, err)
	}
	var rec earningsRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Earnings{}, fmt.Errorf("ledger: earnings %s: %w", node, err)
	}
	return Earnings(rec), nil
}

// creditNode raises the node's mirror of what account has paid it to paid.
func (l *Ledger) creditNode(ctx context.Context, node, account string, paid uint64) error {
	_, err := events.Update(ctx, l.earnings, node, func(old []byte) ([]byte, error) {
		rec := earningsRecord{Node: node, From: map[string]uint64{}}
		if old != nil {
			if err := json.Unmarshal(old, &rec); err != nil {
				return nil, err
			}
			if rec.From == nil {
				rec.From = map[string]uint64{}
			}
		}
		if rec.From[account] >= paid {
			return nil, events.ErrNoChange
		}
		rec.From[account] = paid
		rec.Earned = 0
		for _, v := range rec.From {
			rec.Earned += v
		}
		return json.Marshal(rec)
	})
	return err
}

// emit publishes an event whose id is derived from the account revision
// that caused it, so a retried publish is stored once. The KV state is the
// truth; a failed publish is logged.
func (l *Ledger) emit(ctx context.Context, t events.Type, account string, rev uint64, data any) {
	ev, err := events.NewWithID(string(t)+"/"+account+"/"+strconv.FormatUint(rev, 10), t, l.bus.Name(), data)
	if err == nil {
		err = l.bus.Publish(ctx, ev)
	}
	if err != nil {
		l.log.Warn("event not published", "type", t, "account", account, "revision", rev, "err", err)
	}
}
