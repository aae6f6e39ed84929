package s3api

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
)

// Metering of the bytes served. Every byte of an object a GET answers
// (a whole object or a range; not HEAD, listings or errors) is added up
// in memory per account and bucket and charged to the bucket owner's
// account every MeterInterval, as the gateway's meter charges what it
// serves itself: one ledger compare-and-set per account per interval.
// Each batch carries a sequence number that grows across batches and
// restarts (it starts at the clock in nanoseconds) under the charger
// name MeterName, so the ledger applies it once; a batch that failed is
// retried as is before anything newer of that account is sent. The
// owner pays, not the requester: a presigned URL is the owner's
// signature, whoever uses it.

// ErrAccountOutOfCredit refuses a GET of an object whose bucket's
// account is frozen, or would be once what was served and not charged
// yet is: its objects are not served on credit, as nodes refuse a
// frozen account's sites. S3's code for an account that may not do what
// is asked, with a message that says why.
var ErrAccountOutOfCredit = &Error{Code: "AccountProblem", Status: 403, Message: "The bucket's account is out of credit (frozen: its balance is below its threshold): its objects are not served until its owner tops it up. Listing, HEAD and DELETE still work."}

type meter struct {
	l        Charger
	name     string
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	seq     uint64
	pending map[string]map[string]uint64 // account → label → bytes not yet in a batch
	failed  map[string]ledger.Charge     // account → batch to retry as is
}

func newMeter(l Charger, name string, interval time.Duration, log *slog.Logger, now func() time.Time) *meter {
	m := &meter{
		l: l, name: name, interval: interval, log: log, now: now,
		seq:     uint64(now().UnixNano()),
		pending: make(map[string]map[string]uint64),
		failed:  make(map[string]ledger.Charge),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run()
	return m
}

// add counts n bytes of bucket served, to account.
func (m *meter) add(account, bucket string, n int64) {
	if m == nil || account == "" || n <= 0 {
		return
	}
	m.mu.Lock()
	byLabel := m.pending[account]
	if byLabel == nil {
		byLabel = make(map[string]uint64)
		m.pending[account] = byLabel
	}
	byLabel[BillingLabel(bucket)] += uint64(n)
	m.mu.Unlock()
}

// unbilled is what account was served and not charged yet.
func (m *meter) unbilled(account string) int64 {
	if m == nil {
		return 0
	}
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

func (m *meter) run() {
	defer m.wg.Done()
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(m.ctx, m.interval+10*time.Second)
			_ = m.flush(ctx)
			cancel()
		}
	}
}

// nextSeq returns a batch number above every earlier one.
func (m *meter) nextSeq() uint64 {
	m.seq = max(m.seq+1, uint64(m.now().UnixNano()))
	return m.seq
}

// flush charges what is pending; it returns the first error, and keeps
// the failed batches for the next flush.
func (m *meter) flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	batches := make([]ledger.Charge, 0, len(m.failed)+len(m.pending))
	for _, c := range m.failed {
		batches = append(batches, c)
	}
	for account, byLabel := range m.pending {
		if _, retry := m.failed[account]; retry {
			continue // after the failed batch went through
		}
		batches = append(batches, ledger.Charge{Account: account, Gateway: m.name, Seq: m.nextSeq(), Sites: byLabel})
		delete(m.pending, account)
	}
	clear(m.failed)
	m.mu.Unlock()

	var first error
	for _, c := range batches {
		_, err := m.l.ApplyCharge(ctx, c)
		m.mu.Lock()
		switch {
		case err == nil:
		case errors.Is(err, ledger.ErrUnknownAccount), errors.Is(err, ledger.ErrInvalidAccount), errors.Is(err, ledger.ErrInvalidCharge):
			// Not chargeable, ever: the account is gone or never was.
			m.log.Warn("s3 served bytes: charge dropped", "account", c.Account, "buckets", c.Sites, "err", err)
		default:
			m.failed[c.Account] = c
			if first == nil {
				first = err
			}
		}
		m.mu.Unlock()
	}
	if first != nil {
		m.log.Warn("s3 served bytes: charging failed; will retry", "err", first)
	}
	return first
}

// close stops the ticker and charges what is left. It is idempotent.
func (m *meter) close() error {
	if m == nil {
		return nil
	}
	var err error
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err = m.flush(ctx); err != nil {
			m.mu.Lock()
			m.log.Error("s3 served bytes not charged at shutdown", "failed", m.failed, "err", err)
			m.mu.Unlock()
		}
	})
	return err
}

// checkReader refuses serving the objects of a bucket whose account
// (owner) is frozen, or whose balance less what was served and not
// charged yet is below its threshold, when Accounts is set.
func (s *Server) checkReader(ctx context.Context, owner string) error {
	if s.cfg.Accounts == nil {
		return nil
	}
	a, err := s.cfg.Accounts.Account(ctx, owner)
	if err != nil {
		return err
	}
	if a.Frozen || a.Balance-s.meter.unbilled(owner) < a.FreezeBelow {
		return ErrAccountOutOfCredit
	}
	return nil
}
