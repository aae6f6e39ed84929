package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/ledger"
)

// DefaultAccount is the account of a site created or deployed without
// one: named in the site's records, and created (empty) the first time it
// is needed, so every site's traffic is billed to an account.
const DefaultAccount = "default"

// defaultAccount returns DefaultAccount, creating it when it does not
// exist.
func (c *Control) defaultAccount(ctx context.Context) (string, error) {
	_, err := c.ledger.CreateAccount(ctx, DefaultAccount, 0)
	switch {
	case err == nil:
		c.log.Info("created the default account for sites created without one", "account", DefaultAccount)
	case !errors.Is(err, ledger.ErrAccountExists):
		return "", fmt.Errorf("control: default account: %w", err)
	}
	return DefaultAccount, nil
}

// accountExists checks that account can be assigned.
func (c *Control) accountExists(ctx context.Context, account string) error {
	if _, err := c.ledger.Account(ctx, account); err != nil {
		if errors.Is(err, ledger.ErrUnknownAccount) {
			return fmt.Errorf("%w (create it with: verity accounts create %s)", err, account)
		}
		return err
	}
	return nil
}

// deployAccount picks the account a deploy of site is charged to: the one
// asked for (which must exist), else the deploy token's, else the site's
// current one, else DefaultAccount (created if need be).
func (c *Control) deployAccount(ctx context.Context, site, asked string) (string, error) {
	if asked != "" {
		return asked, c.accountExists(ctx, asked)
	}
	if a, err := c.tokenAccount(ctx, site); err != nil || a != "" {
		return a, err
	}
	if rec, err := c.sites.Record(ctx, site); err == nil && rec.Account != "" {
		return rec.Account, nil
	}
	return c.defaultAccount(ctx)
}

// tokenAccount returns the account site's deploy token belongs to, or "".
func (c *Control) tokenAccount(ctx context.Context, site string) (string, error) {
	e, err := c.tokens.Get(ctx, site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("control: read token: %w", err)
	}
	var rec TokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", fmt.Errorf("control: token record %q: %w", site, err)
	}
	return rec.Account, nil
}
