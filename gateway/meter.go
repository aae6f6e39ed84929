package gateway

import (
	"context"
	"fmt"
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

// accountState is what the gateway knows of an account's balance.
type accountState struct {
	balance int64
	frozen  bool
	missing bool // the account does not exist
}

// accountState is what the coordinator's mirror of the accounts bucket
// says of account, less the bytes served and not charged yet.
func (g *Gateway) accountState(account string) accountState {
	if g.cfg.Accounts == nil {
		return accountState{missing: true}
	}
	a, ok := g.cfg.Accounts.Account(account)
	if !ok {
		return accountState{missing: true}
	}
	return accountState{balance: a.Balance - g.meter.Unbilled(account), frozen: a.Frozen}
}

// FlushCharges charges the bytes served so far to their accounts now,
// instead of at the next MeterInterval. It fails with ErrMeteringOff
// without Config.Charges.
func (g *Gateway) FlushCharges(ctx context.Context) error {
	if g.meter == nil {
		return ErrMeteringOff
	}
	return g.meter.Flush(ctx)
}

// checkCredit refuses a site whose account ran out of credit: its balance,
// less what the gateway served and has not charged yet, is below
// -CreditLimit. A frozen account above that is served (its visitors come
// here when nodes refuse it).
func (g *Gateway) checkCredit(site Site) error {
	if g.meter == nil || site.Account == "" {
		return nil
	}
	st := g.accountState(site.Account)
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
		g.meter.Add(w.site.Account, site, w.bytes)
	}
}
