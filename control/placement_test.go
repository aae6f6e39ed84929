package control

import (
	"errors"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// New roots go to the nodes with the most storage still offered: a node
// that just joined (holding nothing) gets the next root before nodes that
// are nearly full, and a node whose --max-storage is reached gets none.
func TestPlacementSpreads(t *testing.T) {
	bus := openBus(t, "gw-spread")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin, Replicas: 1}, gateway.Config{})
	const gib = int64(1) << 30
	nodes := map[byte]nodeproto.Heartbeat{
		51: {Capacity: 10 * gib, Stored: 9 * gib, FreeDisk: 100 * gib, Version: "test"}, // nearly full
		52: {Capacity: 10 * gib, Stored: 5 * gib, FreeDisk: 100 * gib, Version: "test"},
		53: {Capacity: 10 * gib, Stored: 0, FreeDisk: 100 * gib, Version: "test"},      // just joined
		54: {Capacity: 1 * gib, Stored: 1 * gib, FreeDisk: 100 * gib, Version: "test"}, // full
	}
	ids := map[byte]string{}
	for seed, hb := range nodes {
		rec := sitetest.RecordAt(t, seed, "127.0.0.1")
		joinNodeWith(t, tg, seed, rec, func(c *node.CoordClientConfig) {
			c.Status = func() nodeproto.Heartbeat { return hb }
		})
		ids[seed] = rec.Record.NodeID
	}
	testutil.Eventually(t, 10*time.Second, "four live nodes", func() bool {
		live, err := tg.Coordinator().LiveNodes(t.Context())
		return err == nil && len(live) == 4
	})
	place := func(data string, replicas int) coordinator.Placement {
		t.Helper()
		p, err := tg.Coordinator().Place(t.Context(), events.SiteDeployed{Root: testCID(t, data), Replicas: replicas, CAR: "http://127.0.0.1:1/x.car"})
		if err != nil {
			t.Fatalf("place: %v", err)
		}
		return p
	}
	p := place("one replica", 1)
	if _, ok := p.Nodes[ids[53]]; !ok || len(p.Nodes) != 1 {
		t.Fatalf("one replica went to %v, want the node that just joined (%s)", p.Nodes, ids[53])
	}
	p = place("two replicas", 2)
	if _, ok := p.Nodes[ids[52]]; !ok || len(p.Nodes) != 2 {
		t.Fatalf("two replicas went to %v, want the two emptiest", p.Nodes)
	}
	// Four wanted, three can take it: placed on those (and the root waits
	// for a fourth), never on the full node.
	p, err := tg.Coordinator().Place(t.Context(), events.SiteDeployed{Root: testCID(t, "many replicas"), Replicas: 4, CAR: "http://127.0.0.1:1/x.car"})
	if !errors.Is(err, coordinator.ErrTooFewNodes) {
		t.Fatalf("four replicas on three nodes with room: %v", err)
	}
	if _, ok := p.Nodes[ids[54]]; ok || len(p.Nodes) != 3 {
		t.Fatalf("four replicas wanted: placed on %v; the full node must get none", p.Nodes)
	}
}
