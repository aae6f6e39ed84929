package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Dashboard is an account's spend at a glance: what the dashboard API
// answers.
type Dashboard struct {
	Account Account `json:"account"`
	// Spend is what the account paid, ever, in bytes.
	Spend Spend `json:"spend"`
	// Sites splits Spend by site ("-": vouchers naming no site).
	Sites map[string]SiteSpend `json:"sites"`
	// Nodes: bytes settled to each node, by node id.
	Nodes map[string]uint64 `json:"nodes"`
	// TopUps are the most recent top-ups, oldest first (at most
	// DashboardTopUps).
	TopUps []StatementEntry `json:"topUps"`
}

// Spend totals an account's payments.
type Spend struct {
	Total   uint64 `json:"total"`   // Nodes + Gateway
	Nodes   uint64 `json:"nodes"`   // settled to nodes
	Gateway uint64 `json:"gateway"` // charged by gateways
}

// DashboardTopUps is how many recent top-ups a Dashboard lists.
const DashboardTopUps = 20

// Dashboard returns the account's balance and spend by site and node, from
// one read of its record, and its recent top-ups from the statement.
func (l *Ledger) Dashboard(ctx context.Context, name string) (Dashboard, error) {
	rec, rev, err := l.read(ctx, name)
	if err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{
		Account: rec.public(rev, l.cfg.Now()),
		Spend:   Spend{Total: rec.Spent + rec.Charged, Nodes: rec.Spent, Gateway: rec.Charged},
		Sites:   make(map[string]SiteSpend, len(rec.Sites)),
		Nodes:   maps.Clone(rec.Paid),
	}
	for k, v := range rec.Sites {
		d.Sites[k] = *v
	}
	d.TopUps, err = l.Statement(ctx, name, StatementQuery{Type: EntryTopUp, Limit: DashboardTopUps})
	if err != nil {
		return Dashboard{}, err
	}
	return d, nil
}

// Accounts lists the account names, sorted.
func (l *Ledger) Accounts(ctx context.Context) ([]string, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	keys, err := l.kv.ListKeysFiltered(ctx, AccountKeyPrefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: list accounts: %w", err)
	}
	var out []string
	for k := range keys.Keys() {
		out = append(out, strings.TrimPrefix(k, AccountKeyPrefix))
	}
	slices.Sort(out)
	return out, nil
}

// read returns an account's record and revision.
func (l *Ledger) read(ctx context.Context, name string) (*accountRecord, uint64, error) {
	if err := l.check(); err != nil {
		return nil, 0, err
	}
	if _, err := l.Account(ctx, name); err != nil { // validates the name
		return nil, 0, err
	}
	e, err := l.kv.Get(ctx, AccountKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %q", ErrUnknownAccount, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: get %s: %w", name, err)
	}
	rec, err := decodeAccount(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: account %s: %w", name, err)
	}
	return rec, e.Revision(), nil
}
