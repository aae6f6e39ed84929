package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/ledger"
)

// DefaultAccount is the account a site deployed without one is charged
// to, when it exists.
const DefaultAccount = "default"

// startAccounts starts the accounts API and metering next to the deploy
// API.
func (g *Gateway) startAccounts() {
	// The coordinator's ledger: it trusts every gateway's voucher key and
	// applies the nodes' settlements; the accounts API and the meter
	// share it (the coordinator closes it).
	l := g.coord.Ledger()
	g.meter = newMeter(l, g.coord.Account, g.cfg.Name, g.cfg.MeterInterval, g.log.With("component", "meter"), g.cfg.Now)
	g.ledger = l
}

// Ledger is the ledger the gateway runs with its deploy API, or nil.
func (g *Gateway) Ledger() *ledger.Ledger { return g.ledger }

// FlushCharges charges the bytes served so far to their accounts now,
// instead of at the next MeterInterval.
func (g *Gateway) FlushCharges(ctx context.Context) error {
	if g.meter == nil {
		return ErrAccountsOff
	}
	return g.meter.flush(ctx)
}

// accountExists checks that account can be assigned.
func (g *Gateway) accountExists(ctx context.Context, account string) error {
	if g.ledger == nil {
		return ErrAccountsOff
	}
	if _, err := g.ledger.Account(ctx, account); err != nil {
		if errors.Is(err, ledger.ErrUnknownAccount) {
			return fmt.Errorf("%w (create it with: verity accounts create %s)", err, account)
		}
		return err
	}
	return nil
}

// deployAccount picks the account a deploy of site is charged to: the one
// asked for (which must exist), else the deploy token's, else the site's
// current one, else DefaultAccount when it exists, else none.
func (g *Gateway) deployAccount(ctx context.Context, site, asked string) (string, error) {
	if asked != "" {
		return asked, g.accountExists(ctx, asked)
	}
	if a, err := g.tokenAccount(ctx, site); err != nil || a != "" {
		return a, err
	}
	if g.kvSites != nil {
		if rec, err := g.kvSites.Record(ctx, site); err == nil && rec.Account != "" {
			return rec.Account, nil
		}
	}
	if g.ledger != nil {
		if _, err := g.ledger.Account(ctx, DefaultAccount); err == nil {
			return DefaultAccount, nil
		}
	}
	return "", nil
}

// tokenAccount returns the account site's deploy token belongs to, or "".
func (g *Gateway) tokenAccount(ctx context.Context, site string) (string, error) {
	if g.dep == nil {
		return "", nil
	}
	e, err := g.dep.tokens.Get(ctx, site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("gateway: read token: %w", err)
	}
	var rec TokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", fmt.Errorf("gateway: token record %q: %w", site, err)
	}
	return rec.Account, nil
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
		g.meter.add(w.site.Account, w.site.Name, w.bytes)
	}
}
