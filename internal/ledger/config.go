package ledger

import (
	"errors"
	"log/slog"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/payment"
)

// MaxAmount bounds every amount the ledger counts, in bytes (4 EiB): a
// top-up, a charge, a hold, a balance. Sums of a few such amounts stay
// within 64 bits.
const MaxAmount = 1 << 62

// Config configures a Ledger. Bus and Keys are required; every other field
// has a working zero value.
type Config struct {
	// Bus holds the KV buckets and carries the events.
	Bus *events.Bus

	// Keys are the gateway keys vouchers may be signed with.
	Keys payment.GatewayKeys

	// SettleGrace is how long after its voucher expired a session's
	// receipts may still be settled. Default 24 h.
	SettleGrace time.Duration

	// PruneMargin is how much longer than SettleGrace the ledger keeps a
	// session's settled state, so that coordinators with clocks this far
	// apart still refuse an expired receipt rather than forget they paid
	// it. Default 1 h.
	PruneMargin time.Duration

	// MaxOverdraft is the optimistic bound: how far below zero settlements
	// may take a balance. Bytes beyond it are deferred (not settled; the
	// node may submit them again after a top-up). Default 1 GiB; negative:
	// no overdraft, balances never go below zero.
	MaxOverdraft int64

	// FreezeBelow is the freezing threshold given to new accounts: an
	// account whose balance falls below it is frozen. Default 256 MiB.
	FreezeBelow int64

	// MaxBatchItems bounds a batch. Default 999, and at most 999: a
	// batch is written with its account in one atomic batch of at most
	// 1,000 messages (the server's limit).
	MaxBatchItems int

	// StatementDepth is how many entries of each type (settle, charge,
	// topup, create) the statement stream keeps per account; older ones
	// are dropped. Default 10000.
	StatementDepth int

	// StatementMaxAge is how long statement entries are kept. Default
	// 400 days.
	StatementMaxAge time.Duration

	// Replicas of the KV buckets and the statement stream. Default 1.
	Replicas int

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Logger default slog.Default().
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	if c.Bus == nil {
		return c, errors.New("ledger: Config.Bus is required")
	}
	if c.Keys == nil {
		return c, errors.New("ledger: Config.Keys is required")
	}
	if c.SettleGrace <= 0 {
		c.SettleGrace = 24 * time.Hour
	}
	if c.PruneMargin <= 0 {
		c.PruneMargin = time.Hour
	}
	switch {
	case c.MaxOverdraft == 0:
		c.MaxOverdraft = 1 << 30
	case c.MaxOverdraft < 0:
		c.MaxOverdraft = 0
	}
	if c.FreezeBelow == 0 {
		c.FreezeBelow = 256 << 20
	}
	if c.MaxBatchItems <= 0 || c.MaxBatchItems > maxAtomicBatch-1 {
		c.MaxBatchItems = maxAtomicBatch - 1
	}
	if c.StatementDepth <= 0 {
		c.StatementDepth = 10000
	}
	if c.StatementMaxAge <= 0 {
		c.StatementMaxAge = 400 * 24 * time.Hour
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
