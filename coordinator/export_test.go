package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/verity-cdn/verity/internal/events"
)

// OnRetryPass has f called with the time of each pass of the pin retry
// scheduler, once the pass has stored the retries it found due: a test
// waits for a pass past some time instead of sleeping until then.
func (c *Coordinator) OnRetryPass(f func(now time.Time)) { c.retryPassed.Store(&f) }

// PassAudits makes every storage audit of a coordinator made with cfg
// pass without fetching anything: for tests whose nodes hold nothing.
func PassAudits(cfg *Config) {
	cfg.audit = func(context.Context, string, string) error { return nil }
}

// FailAudits makes every storage audit of a coordinator made with cfg
// fail, as a node that holds nothing would.
func FailAudits(cfg *Config) {
	cfg.audit = func(context.Context, string, string) error { return errors.New("block missing") }
}

// RereplicateFrom is Rereplicate over ps instead of the placements this
// coordinator mirrors now: the view of a pass that read them a moment
// before (its watch behind the bus, or another coordinator's).
func (c *Coordinator) RereplicateFrom(ctx context.Context, ps []Placement) (int, error) {
	return c.rereplicate(ctx, ps)
}

// SetAudit replaces the storage audit of a coordinator made with cfg.
func SetAudit(cfg *Config, f func(ctx context.Context, base, root string) error) { cfg.audit = f }

// BeforeSendPin has f called at the start of every pin order this
// coordinator is about to send, with the root and the node: a test holds
// one order there to land it after the node has answered another.
func BeforeSendPin(c *Coordinator, f func(root, node string)) { c.beforeSendPin.Store(&f) }

// OnNodeChange runs the re-replication consumer's handler on ev, as a
// delivery of it would: a test hands it an event that comes late.
func OnNodeChange(c *Coordinator, ctx context.Context, ev events.Event) error {
	return c.onNodeChange(ctx, ev)
}

// RepairGrantBurst is how many repair grants an operator's nodes get
// before the bucket limits them to its rate.
const RepairGrantBurst = repairGrantBurst
