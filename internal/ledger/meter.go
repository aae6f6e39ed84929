package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Applier applies a batch of charges: *Ledger. A batch is applied once per
// (Gateway, Seq), so a retry after a lost answer charges nothing twice.
type Applier interface {
	ApplyCharge(ctx context.Context, c Charge) (ChargeResult, error)
}

// MeterConfig configures a Meter.
type MeterConfig struct {
	// Applier takes the batches. Required.
	Applier Applier
	// Name is the batches' Charge.Gateway: the charger's name, unique
	// per process that meters.
	Name string
	// Interval between flushes. Default 10 s.
	Interval time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock the sequence numbers start from. Default time.Now.
	Now func() time.Time
}

// Meter adds up bytes served per account and label (a site, a bucket's
// billing label) and charges them once per interval: one
// compare-and-set per account, not one per request. Each batch carries a
// sequence number that grows across batches and restarts (it starts at
// the clock in nanoseconds), so the ledger applies it once; a batch that
// failed is retried as is before anything newer of that account is
// sent. The site edge and the S3 API meter what they serve with it.
type Meter struct {
	cfg MeterConfig

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error

	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	seq     uint64
	pending map[string]map[string]uint64 // account → label → bytes not yet in a batch
	failed  map[string]Charge            // account → batch to retry as is
}

// NewMeter starts a Meter; Close stops it and charges what is left.
func NewMeter(cfg MeterConfig) *Meter {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Meter{
		cfg:     cfg,
		seq:     uint64(cfg.Now().UnixNano()),
		pending: make(map[string]map[string]uint64),
		failed:  make(map[string]Charge),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run()
	return m
}

// Add counts n bytes served under label to account; nothing without an
// account or bytes.
func (m *Meter) Add(account, label string, n int64) {
	if account == "" || n <= 0 {
		return
	}
	m.mu.Lock()
	byLabel := m.pending[account]
	if byLabel == nil {
		byLabel = make(map[string]uint64)
		m.pending[account] = byLabel
	}
	byLabel[label] += uint64(n)
	m.mu.Unlock()
}

// Unbilled is what account was served and not charged yet (pending, and
// in a batch that failed).
func (m *Meter) Unbilled(account string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for _, b := range m.pending[account] {
		n += b
	}
	for _, b := range m.failed[account].Sites {
		n += b
	}
	return int64(min(n, 1<<62))
}

func (m *Meter) run() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Interval+10*time.Second)
			_ = m.Flush(ctx)
			cancel()
		}
	}
}

// nextSeq returns a batch number above every earlier one.
func (m *Meter) nextSeq() uint64 {
	m.seq = max(m.seq+1, uint64(m.cfg.Now().UnixNano()))
	return m.seq
}

// Flush charges what is pending now; it returns the first error, and
// keeps the failed batches for the next flush.
func (m *Meter) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	batches := make([]Charge, 0, len(m.failed)+len(m.pending))
	for _, c := range m.failed {
		batches = append(batches, c)
	}
	for account, byLabel := range m.pending {
		if _, retry := m.failed[account]; retry {
			continue // after the failed batch went through
		}
		batches = append(batches, Charge{Account: account, Gateway: m.cfg.Name, Seq: m.nextSeq(), Sites: byLabel})
		delete(m.pending, account)
	}
	clear(m.failed)
	m.mu.Unlock()

	var first error
	for _, c := range batches {
		_, err := m.cfg.Applier.ApplyCharge(ctx, c)
		m.mu.Lock()
		switch {
		case err == nil:
		case errors.Is(err, ErrUnknownAccount), errors.Is(err, ErrInvalidAccount), errors.Is(err, ErrInvalidCharge):
			// Not chargeable, ever: the account is gone or never was.
			m.cfg.Logger.Warn("charge dropped", "account", c.Account, "labels", c.Sites, "err", err)
		default:
			m.failed[c.Account] = c
			if first == nil {
				first = err
			}
		}
		m.mu.Unlock()
	}
	if first != nil {
		m.cfg.Logger.Warn("charging served bytes failed; will retry", "err", first)
	}
	return first
}

// Close stops the ticker and charges what is left. It is idempotent.
func (m *Meter) Close() error {
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if m.err = m.Flush(ctx); m.err != nil {
			m.mu.Lock()
			m.cfg.Logger.Error("served bytes not charged at shutdown", "failed", m.failed, "err", m.err)
			m.mu.Unlock()
		}
	})
	return m.err
}
