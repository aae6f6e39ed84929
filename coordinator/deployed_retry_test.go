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
	bus, err := events.Open(ctxT(t), events.Config{StoreDir: t.TempDir(), Name: "test", Logger: testLogger(t),
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	srv := startServer(t)
	c := newCoordinator(t, bus, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.FailAudits(c)
	})
	srv.cur.Store(c)
	ctx := ctxT(t)
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	var orders atomic.Int32
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
	defer nc.Close()
	eventually(t, "the node live", func() bool {
		live, err := c.LiveNodes(ctx)
		return err == nil && len(live) == 1
	})
	root := cidOf(t, "liar root")
	ev, _ := events.New(events.TypeSiteDeployed, "test", events.SiteDeployed{Site: "s", Root: root, Replicas: 2, CAR: "http://127.0.0.1:1/x.car"})
	if err := bus.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node failed its audit", func() bool {
		p, _ := c.Placement(root)
		return p.Nodes[k.id].State == coordinator.HolderFailed
	})
	// The redeliveries (10, 20-100 ms apart) come within this window; a
	// loaded machine may see fewer of them, never more orders.
	for deadline := time.Now().Add(testutil.Scale(2 * time.Second)); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := orders.Load(); n > 1 {
			t.Fatalf("%d pin orders for one site.deployed, want 1", n)
		}
	}
}

// The repair pass orders again a node that failed a root every time (here
// every audit) at most once per RepairRetryAfter, not at every pass:
// each order costs the node a read of the whole DAG and the network an
// audit and a node.audit_failed event.
func TestRepairPassOrdersAFailingNodeOncePerRetryAfter(t *testing.T) {
	bus, err := events.Open(ctxT(t), events.Config{StoreDir: t.TempDir(), Name: "test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	srv := startServer(t)
	c := newCoordinator(t, bus, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.FailAudits(c)
		c.RepairInterval = 50 * time.Millisecond
		c.RepairRetryAfter = time.Hour
	})
	srv.cur.Store(c)
	ctx := ctxT(t)
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	var orders atomic.Int32
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
	defer nc.Close()
	eventually(t, "the node live", func() bool {
		live, err := c.LiveNodes(ctx)
		return err == nil && len(live) == 1
	})
	root := cidOf(t, "failing root")
	if _, err := c.Place(ctx, events.SiteDeployed{Site: "s", Root: root, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node failed its audit", func() bool {
		p, _ := c.Placement(root)
		return p.Nodes[k.id].State == coordinator.HolderFailed
	})
	// About 40 passes in this window; a loaded machine runs fewer, never
	// more orders.
	for deadline := time.Now().Add(testutil.Scale(2 * time.Second)); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := orders.Load(); n > 1 {
			t.Fatalf("%d pin orders, want 1: the pass ordered the failing node again", n)
		}
	}
}
