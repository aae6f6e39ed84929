package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// Charger takes the batches of bytes the gateway served, per account and
// site: the coordinator's *ledger.Ledger. A batch is applied once per
// (Gateway, Seq), so a retry after a lost answer charges nothing twice.
type Charger interface {
	ApplyCharge(ctx context.Context, c ledger.Charge) (ledger.ChargeResult, error)
}

// Holder reserves a voucher's budget on its account until the voucher
// expires: the coordinator's *ledger.Ledger. It returns
// ledger.ErrInsufficientFunds when the account's available funds do not
// cover it and payment.ErrAccountFrozen for a frozen account.
type Holder interface {
	Hold(ctx context.Context, account string, id payment.VoucherID, budget uint64, expires time.Time) error
}

// AccountSource tells the gateway an account's balance and whether it is
// frozen, as the coordinator's mirror of the ledger has it; false for an
// account that does not exist.
type AccountSource interface {
	Account(name string) (nodeproto.AccountState, bool)
}

// meter adds up the bytes the gateway serves on its HTTPS path per account
// and site, and charges them to the ledger once per interval: one
// compare-and-set per account, not one per request. Each batch carries a
// sequence number that grows across batches and restarts (it starts at
// the clock in nanoseconds), so the ledger applies it once; a batch that
// failed is retried with its number before anything newer of that account
// is sent.
type meter struct {
	l        Charger
	gateway  string
	interval time.Duration
	accounts AccountSource // nil: balances unknown, nothing refused
	log      *slog.Logger
	now      func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	flushMu sync.Mutex // one flush at a time

	mu      sync.Mutex
	seq     uint64
	pending map[string]map[string]uint64 // account → site → bytes not yet in a batch
	failed  map[string]ledger.Charge     // account → batch to retry as is
}

// accountState is what the gateway knows of an account's balance.
type accountState struct {
	balance int64
	frozen  bool
	missing bool // the account does not exist
}

func newMeter(l Charger, accounts AccountSource, gateway string, interval time.Duration, log *slog.Logger, now func() time.Time) *meter {
	m := &meter{
		l: l, accounts: accounts, gateway: gateway, interval: interval, log: log, now: now,
		seq:     uint64(now().UnixNano()),
		pending: make(map[string]map[string]uint64),
		failed:  make(map[string]ledger.Charge),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.run()
	return m
}

// add counts n bytes served for site to account.
func (m *meter) add(account, site string, n int64) {
	if account == "" || n <= 0 {
		return
	}
	m.mu.Lock()
	bySite := m.pending[account]
	if bySite == nil {
		bySite = make(map[string]uint64)
		m.pending[account] = bySite
	}
	bySite[site] += uint64(n)
	m.mu.Unlock()
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
			m.flush(ctx)
			cancel()
		}
	}
}

// nextSeq returns a batch number above every earlier one.
func (m *meter) nextSeq() uint64 {
	m.seq = max(m.seq+1, uint64(m.now().UnixNano()))
	return m.seq
}

// flush charges what is pending; it returns the first error, and keeps the
// failed batches for the next flush.
func (m *meter) flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	batches := make([]ledger.Charge, 0, len(m.failed)+len(m.pending))
	for _, c := range m.failed {
		batches = append(batches, c)
	}
	for account, bySite := range m.pending {
		if _, retry := m.failed[account]; retry {
			continue // after the failed batch went through
		}
		batches = append(batches, ledger.Charge{Account: account, Gateway: m.gateway, Seq: m.nextSeq(), Sites: bySite})
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
			// Not chargeable, ever: the account was never created.
			m.log.Warn("charge dropped", "account", c.Account, "sites", c.Sites, "err", err)
		default:
			m.failed[c.Account] = c
			if first == nil {
				first = err
			}
		}
		m.mu.Unlock()
	}
	if first != nil {
		m.log.Warn("charging served bytes failed; will retry", "err", first)
	}
	return first
}

// state is what the coordinator's mirror of the accounts bucket says of
// account, less the bytes served and not charged yet.
func (m *meter) state(account string) accountState {
	if m.accounts == nil {
		return accountState{missing: true}
	}
	a, ok := m.accounts.Account(account)
	if !ok {
		return accountState{missing: true}
	}
	st := accountState{balance: a.Balance, frozen: a.Frozen}
	m.mu.Lock()
	for _, n := range m.pending[account] {
		st.balance -= int64(n)
	}
	for _, n := range m.failed[account].Sites {
		st.balance -= int64(n)
	}
	m.mu.Unlock()
	return st
}

// close stops the ticker and charges what is left. It is idempotent.
func (m *meter) close() error {
	var err error
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err = m.flush(ctx); err != nil {
			m.mu.Lock()
			m.log.Error("served bytes not charged at shutdown", "failed", m.failed, "err", err)
			m.mu.Unlock()
		}
	})
	return err
}

// FlushCharges charges the bytes served so far to their accounts now,
// instead of at the next MeterInterval. It fails with ErrMeteringOff
// without Config.Charges.
func (g *Gateway) FlushCharges(ctx context.Context) error {
	if g.meter == nil {
		return ErrMeteringOff
	}
	return g.meter.flush(ctx)
}

// checkCredit refuses a site whose account ran out of credit: its balance,
// less what the gateway served and has not charged yet, is below
// -CreditLimit. A frozen account above that is served (its visitors come
// here when nodes refuse it).
func (g *Gateway) checkCredit(site Site) error {
	if g.meter == nil || site.Account == "" {
		return nil
	}
	st := g.meter.state(site.Account)
	if !st.missing && st.balance < -g.cfg.CreditLimit {
		return &RequestError{Kind: ErrPaymentRequired, Detail: fmt.Sprintf(
			"site %q is suspended: its account %q has run out of credit (balance %d bytes); the site's owner can top it up",
			site.Name, site.Account, st.balance)}
	}
	return nil
}

// meterServed charges the bytes of a response on the HTTPS path to the
// site's account.
func (g *Gateway) meterServed(w *statusWriter) {
	if g.meter != nil && w.metered && w.site.Account != "" {
		site := w.site.Name
		if w.billed != "" {
			site = w.billed
		}
		g.meter.add(w.site.Account, site, w.bytes)
	}
}
