package control

import (
	"bytes"
	"os"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// Content every holder of which failed its audit (both nodes lost its
// root block, or hold it corrupt), stored again (an S3 PUT of the same
// bytes): the store places it again, the nodes, told to check, fetch what
// they lost, and it is held again. Without that, the store found the
// placement and went no further, and the content stayed unheld until a
// node joined or left: every store of those bytes waited for holders that
// were never ordered to pin.
func TestStoreAgainAfterEveryHolderFailedItsAudit(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(t *testing.T, n *node.Node, c gocid.Cid)
	}{
		{"root block lost", func(t *testing.T, n *node.Node, c gocid.Cid) {
			if err := n.Blockstore().DeleteBlock(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}},
		{"root block corrupt", func(t *testing.T, n *node.Node, c gocid.Cid) {
			p, err := n.BlockPath(c)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff // the same size, as bit rot leaves it
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { storeAgainAfterFailedAudits(t, tc.harm) })
	}
}

func storeAgainAfterFailedAudits(t *testing.T, harm func(*testing.T, *node.Node, gocid.Cid)) {
	bus := openBus(t, "gw-store-again")
	tg, _ := startStackWith(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{},
		func(c *coordinator.Config) { c.AuditInterval = 100 * time.Millisecond })
	nodes := startNodes(t, tg, 2)
	carBytes, root := siteCAR(t, sitetest.Files())
	store := func() {
		t.Helper()
		got, err := tg.ctl.StoreCAR(t.Context(), "s3_again", "", bytes.NewReader(carBytes))
		if err != nil || got != root {
			t.Fatalf("store: %s %v, want %s", got, err, root)
		}
	}
	heldByBoth := func() bool {
		held, want, err := tg.ctl.Holders(t.Context(), root)
		return err == nil && want == 2 && held == want
	}
	store()
	waitFor(t, "both nodes hold the content", heldByBoth)

	rc, err := gocid.Decode(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		harm(t, n, rc)
	}
	waitFor(t, "both holders failed their audit", func() bool {
		p, _ := tg.Coordinator().Placement(root)
		return len(p.Holders(coordinator.HolderFailed)) == 2
	})

	store()
	defer func() {
		if t.Failed() {
			p, _ := tg.Coordinator().Placement(root)
			t.Logf("placement %+v", p)
		}
	}()
	waitFor(t, "both nodes hold the content again", heldByBoth)
	for _, n := range nodes {
		if _, err := n.Blockstore().Get(t.Context(), rc); err != nil {
			t.Fatalf("node %s: root block: %v", n.ID(), err)
		}
	}
}

// Content every holder of which failed its audit, on a network with no
// other node, and not stored again: the coordinator's periodic repair
// (coordinator.Config.RepairInterval) orders the nodes again, with a
// check, and they fetch what they lost. Before, the content stayed
// unheld until a node joined or left.
func TestEveryHolderFailedRepairedWithoutAStore(t *testing.T) {
	bus := openBus(t, "gw-repair-pass")
	tg, _ := startStackWith(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{},
		func(c *coordinator.Config) {
			c.AuditInterval = 100 * time.Millisecond
			c.RepairInterval = 200 * time.Millisecond
			c.RepairRetryAfter = -1 // exhausted nodes ordered again at the next pass
		})
	nodes := startNodes(t, tg, 2)
	carBytes, root := siteCAR(t, sitetest.Files())
	if got, err := tg.ctl.StoreCAR(t.Context(), "s3_repair", "", bytes.NewReader(carBytes)); err != nil || got != root {
		t.Fatalf("store: %s %v, want %s", got, err, root)
	}
	heldByBoth := func() bool {
		held, want, err := tg.ctl.Holders(t.Context(), root)
		return err == nil && want == 2 && held == want
	}
	waitFor(t, "both nodes hold the content", heldByBoth)
	rc, err := gocid.Decode(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.Blockstore().DeleteBlock(t.Context(), rc); err != nil {
			t.Fatal(err)
		}
	}
	// Each fails its audit and is repaired, maybe before the other
	// fails: the root block back on both (only a fetch brings it back)
	// and both counted.
	waitFor(t, "both nodes hold the content again, its root block fetched again", func() bool {
		for _, n := range nodes {
			if _, err := n.Blockstore().Get(t.Context(), rc); err != nil {
				return false
			}
		}
		return heldByBoth()
	})
}
