package coordinator_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// One site.deployed wanting 2 copies, on a network of 1 node that says it
// pinned and fails every audit: the node gets one order. The placement is
// short of nodes, so the event is redelivered; each delivery orders again
// nodes that failed the root every attempt (a deploy asks for the root
// again), but only those that failed before the event, not the node that
// failed the order this event sent.
func TestDeployedRedeliveryOrdersAFailedNodeOnce(t *testing.T) {
	c, bus, id, orders := failingNode(t, events.Config{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}, nil)
	root := cidOf(t, "liar root")
	ev, _ := events.New(events.TypeSiteDeployed, "test", events.SiteDeployed{Site: "s", Root: root, Replicas: 2, CAR: "http://127.0.0.1:1/x.car"})
	if err := bus.Publish(ctxT(t), ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node failed its audit", func() bool {
		p, _ := c.Placement(root)
		return p.Nodes[id].State == coordinator.HolderFailed
	})
	// The redeliveries come 20-100 ms apart, 10 of them.
	noSecondOrder(t, orders, "a redelivery of the event ordered the node that failed its order again")
}

// The repair pass orders again a node that failed a root every time (here
// every audit) at most once per RepairRetryAfter, not at every pass:
// each order costs the node a read of the whole DAG and the network an
// audit and a node.audit_failed event.
func TestRepairPassOrdersAFailingNodeOncePerRetryAfter(t *testing.T) {
	c, _, id, orders := failingNode(t, events.Config{}, func(c *coordinator.Config) {
		c.RepairInterval = 50 * time.Millisecond
		c.RepairRetryAfter = time.Hour
	})
	root := cidOf(t, "failing root")
	if _, err := c.Place(ctxT(t), events.SiteDeployed{Site: "s", Root: root, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node failed its audit", func() bool {
		p, _ := c.Placement(root)
		return p.Nodes[id].State == coordinator.HolderFailed
	})
	// About 40 passes in the window.
	noSecondOrder(t, orders, "the pass ordered the failing node again")
}

// A node.joined (or node.lost) handled after a node failed a root every
// attempt does not order that node again when it failed after the event
// happened: the event says nothing new of it. Before, it did: the node's
// own node.joined, handled late on a loaded machine (the re-replication
// consumer behind the deploy and the audit), ordered it a second time.
func TestLateNodeEventOrdersAFailedNodeOnce(t *testing.T) {
	c, _, id, orders := failingNode(t, events.Config{}, func(cfg *coordinator.Config) {
		cfg.RepairInterval = time.Hour
	})
	joined, err := events.New(events.TypeNodeJoined, "test", events.NodeJoined{Node: id})
	if err != nil {
		t.Fatal(err)
	}
	root := cidOf(t, "late event root")
	if _, err := c.Place(ctxT(t), events.SiteDeployed{Site: "s", Root: root, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node failed its audit", func() bool {
		p, _ := c.Placement(root)
		return p.Nodes[id].State == coordinator.HolderFailed
	})
	// The event, made before the failure, is handled after it.
	if err := coordinator.OnNodeChange(c, ctxT(t), joined); err != nil {
		t.Fatal(err)
	}
	noSecondOrder(t, orders, "a node.joined from before the failure ordered the node again")
}

// A pin order held between the placement's write and its send (the
// write's own send, or the watch's of the same revision) lands after the
// other one was sent, answered and the holder's audit failed: it is not
// sent. Before, it was: the node was ordered twice for one placement,
// and with it read the DAG and failed an audit once more.
func TestAStalePinOrderIsNotSent(t *testing.T) {
	var calls atomic.Int32
	held := make(chan struct{})
	c, _, id, orders := failingNode(t, events.Config{}, func(cfg *coordinator.Config) {
		cfg.RepairInterval = time.Hour
	})
	root := cidOf(t, "stale order root")
	coordinator.BeforeSendPin(c, func(r, _ string) {
		if r != root || calls.Add(1) != 1 {
			return
		}
		// The first send waits for the node's answer to the other.
		defer close(held)
		for deadline := time.Now().Add(testutil.Scale(10 * time.Second)); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if p, _ := c.Placement(root); p.Nodes[id].State == coordinator.HolderFailed {
				return
			}
		}
		t.Error("the node never failed its audit: the other send did not happen")
	})
	if _, err := c.Place(ctxT(t), events.SiteDeployed{Site: "s", Root: root, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(testutil.Scale(20 * time.Second)):
		t.Fatal("no pin order held")
	}
	noSecondOrder(t, orders, "the held order was sent after the node answered the other")
}

// failingNode starts a coordinator (configured by mod, audits failing)
// with one live node that says it pinned whatever it is ordered to; it
// returns the coordinator, the bus, the node's id and its count of pin
// orders.
func failingNode(t *testing.T, busCfg events.Config, mod func(*coordinator.Config)) (*coordinator.Coordinator, *events.Bus, string, *atomic.Int32) {
	t.Helper()
	busCfg.StoreDir, busCfg.Name, busCfg.Logger = t.TempDir(), "test", testLogger(t)
	bus, err := events.Open(ctxT(t), busCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	joined := nodeEvents(t, bus, "failing-node-test")
	srv := startServer(t)
	c := newCoordinator(t, bus, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.FailAudits(c)
		if mod != nil {
			mod(c)
		}
	})
	srv.cur.Store(c)
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	orders := &atomic.Int32{}
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: srv.url, Key: k.priv, OperatorToken: operatorToken(bus),
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		OnPin:      func(context.Context, nodeproto.Pin) error { orders.Add(1); return nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	eventually(t, "the node live", func() bool {
		live, err := c.LiveNodes(ctxT(t))
		return err == nil && len(live) == 1
	})
	// The node is live before its node.joined is made: the event's time
	// must come before anything the test does, or the re-replication it
	// leads to may order again a node that failed since.
	if ev := nextEvent(t, joined); ev.Type != events.TypeNodeJoined {
		t.Fatalf("first node event %s, want %s", ev.Type, events.TypeNodeJoined)
	}
	return c, bus, k.id, orders
}

// noSecondOrder fails the test if orders passes 1 within a window in
// which the retries under test would have come many times (a loaded
// machine sees fewer of them, never more orders).
func noSecondOrder(t *testing.T, orders *atomic.Int32, what string) {
	t.Helper()
	for deadline := time.Now().Add(testutil.Scale(2 * time.Second)); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := orders.Load(); n > 1 {
			t.Fatalf("%d pin orders, want 1: %s", n, what)
		}
	}
}
