package coordinator

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// newLocalCoordinator is a coordinator with no placement consumer on a
// bus of its own (an embedded NATS in a temporary directory), logging
// nowhere; cfg's other fields are kept. Both close with the test.
func newLocalCoordinator(t *testing.T, cfg Config) *Coordinator {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	cfg.Bus, cfg.Logger, cfg.NoPlacement = bus, log, true
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// An audit asked for while one of the same holding runs is not dropped: it
// runs once the first is done. Dropped, a holding that was failed, ordered
// again and said pinned again in the meantime stayed "auditing" for good.
func TestAuditAskedWhileRunningRunsAgain(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	c := newLocalCoordinator(t, Config{audit: func(ctx context.Context, _, _ string) error {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}})
	var st NodeState
	st.State, st.LastSeen = StateLive, time.Now()
	st.Record.Record.HTTP = "http://192.0.2.1:4001"
	c.cacheStore("n1", st, 1)

	c.startAudit("n1", "bafyroot")
	testutil.Eventually(t, 10*time.Second, "the first audit running", func() bool { return calls.Load() == 1 })
	c.startAudit("n1", "bafyroot") // the holding said pinned again meanwhile
	close(release)
	testutil.Eventually(t, 10*time.Second, "a second audit", func() bool { return calls.Load() == 2 })
}

// A holding left "auditing" with no audit running is audited again. An
// audit that could not run (the node's state here was not live yet, as
// right after a NATS failover) or whose result could not be stored (the
// placement bucket had no leader) left the holding "auditing" for good:
// it counted for nothing and nothing audited it until the node said
// pinned again.
func TestStuckAuditingHoldingAuditedAgain(t *testing.T) {
	var calls atomic.Int32
	c := newLocalCoordinator(t, Config{PinRetryMin: 50 * time.Millisecond, audit: func(context.Context, string, string) error {
		calls.Add(1)
		return nil
	}})
	ctx := t.Context()
	const root = "bafystuck"
	if _, err := c.Place(ctx, events.SiteDeployed{Site: "st", Root: root, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err == nil {
		t.Fatal("placed with no live node")
	}
	if _, err := c.updatePlacement(ctx, root, func(p *Placement) bool {
		p.Nodes["n1"] = Holder{State: HolderAuditing, Since: time.Now().UTC()}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the placement seen", func() bool {
		p, ok := c.Placement(root)
		return ok && p.Nodes["n1"].State == HolderAuditing
	})
	c.mu.Lock()
	c.conns["n1"] = &nodeConn{c: c, node: "n1", log: c.log}
	c.mu.Unlock()
	// The node is connected, but its state here is not live yet.
	c.startAudit("n1", root)
	testutil.Eventually(t, 10*time.Second, "the skipped audit done", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, running := c.auditing[auditKey{"n1", root}]
		return !running
	})
	var st NodeState
	st.State, st.LastSeen = StateLive, time.Now()
	st.Record.Record.HTTP = "http://192.0.2.1:4001"
	c.cacheStore("n1", st, 1)
	testutil.Eventually(t, 10*time.Second, "the holding audited and pinned", func() bool {
		p, _ := c.Placement(root)
		return calls.Load() >= 1 && p.Nodes["n1"].State == HolderPinned
	})
	c.mu.Lock()
	delete(c.conns, "n1")
	c.mu.Unlock()
}
