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
	st := storeOnTwo(t, "gw-store-again", func(c *coordinator.Config) { c.AuditInterval = 100 * time.Millisecond })
	for _, n := range st.nodes {
		harm(t, n, st.rc)
	}
	waitFor(t, "both holders failed their audit", func() bool {
		p, _ := st.tg.Coordinator().Placement(st.root)
		return len(p.Holders(coordinator.HolderFailed)) == 2
	})

	st.store(t)
	defer func() {
		if t.Failed() {
			p, _ := st.tg.Coordinator().Placement(st.root)
			t.Logf("placement %+v", p)
		}
	}()
	waitFor(t, "both nodes hold the content again, its root block whole", st.wholeOnBoth(t))
}

// Content every holder of which failed its audit, on a network with no
// other node, and not stored again: the coordinator's periodic repair
// (coordinator.Config.RepairInterval) orders the nodes again, with a
// check, and they fetch what they lost. Before, the content stayed
// unheld until a node joined or left.
func TestEveryHolderFailedRepairedWithoutAStore(t *testing.T) {
	st := storeOnTwo(t, "gw-repair-pass", func(c *coordinator.Config) {
		c.AuditInterval = 100 * time.Millisecond
		c.RepairInterval = 200 * time.Millisecond
		c.RepairRetryAfter = -1 // exhausted nodes ordered again at the next pass
	})
	for _, n := range st.nodes {
		if err := n.Blockstore().DeleteBlock(t.Context(), st.rc); err != nil {
			t.Fatal(err)
		}
	}
	// Each fails its audit and is repaired, maybe before the other
	// fails: the root block back on both (only a fetch brings it back)
	// and both counted.
	waitFor(t, "both nodes hold the content again, its root block fetched again", st.wholeOnBoth(t))
}

// storedOnTwo is content stored (as an S3 object's is) on a stack with
// two nodes, both holding it.
type storedOnTwo struct {
	tg    *testStack
	nodes []*node.Node
	car   []byte
	root  string
	rc    gocid.Cid
}

// storeOnTwo starts a stack whose coordinator mod configures, with two
// nodes, stores a site's CAR and waits until both nodes hold it.
func storeOnTwo(t *testing.T, busName string, mod func(*coordinator.Config)) *storedOnTwo {
	t.Helper()
	tg, _ := startStackWith(t, openBus(t, busName), Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{}, mod)
	st := &storedOnTwo{tg: tg, nodes: startNodes(t, tg, 2)}
	st.car, st.root = siteCAR(t, sitetest.Files())
	var err error
	if st.rc, err = gocid.Decode(st.root); err != nil {
		t.Fatal(err)
	}
	st.store(t)
	waitFor(t, "both nodes hold the content", func() bool { return st.heldByBoth(t) })
	return st
}

// store stores the content (again), as an S3 PUT of its bytes does.
func (st *storedOnTwo) store(t *testing.T) {
	t.Helper()
	got, err := st.tg.ctl.StoreCAR(t.Context(), "s3_again", "", bytes.NewReader(st.car))
	if err != nil || got != st.root {
		t.Fatalf("store: %s %v, want %s", got, err, st.root)
	}
}

func (st *storedOnTwo) heldByBoth(t *testing.T) bool {
	held, want, err := st.tg.ctl.Holders(t.Context(), st.root)
	return err == nil && want == 2 && held == want
}

// wholeOnBoth reports whether both nodes hold the content and its root
// block reads back whole on each.
func (st *storedOnTwo) wholeOnBoth(t *testing.T) func() bool {
	return func() bool {
		for _, n := range st.nodes {
			if _, err := n.Blockstore().Get(t.Context(), st.rc); err != nil {
				return false
			}
		}
		return st.heldByBoth(t)
	}
}
