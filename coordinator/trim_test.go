package coordinator_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// trimNode is a node of the trim tests: it pins every order at once and
// records the roots it was told to drop, by an unpin or, when it joins
// again, by the placed list leaving them out.
type trimNode struct {
	k    nodeKey
	port int
	nc   *node.CoordClient

	mu     sync.Mutex
	pins   []string // ordered and not dropped since
	unpins []string
}

func (n *trimNode) drop(root string) {
	n.pins = slices.DeleteFunc(n.pins, func(r string) bool { return r == root })
	n.unpins = append(n.unpins, root)
}

func (n *trimNode) unpinned(root string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Contains(n.unpins, root)
}

// join connects n (again) with its key.
func (n *trimNode) join(t *testing.T, e *env) {
	t.Helper()
	rec := signedRecord(t, n.k, n.port)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: n.k.priv, OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		OnPin: func(_ context.Context, p nodeproto.Pin) error {
			n.mu.Lock()
			defer n.mu.Unlock()
			if !slices.Contains(n.pins, p.Root) {
				n.pins = append(n.pins, p.Root)
			}
			return nil
		},
		OnPlaced: func(_ context.Context, placed func(string) bool) {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, r := range slices.Clone(n.pins) {
				if !placed(r) {
					n.drop(r)
				}
			}
		},
		OnUnpin: func(_ context.Context, root string, _ func() bool) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.drop(root)
		},
		MinBackoff: 10 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	n.nc = nc
	eventually(t, "join", func() bool { return nc.State().Joined })
}

// trimEnv: A and B hold a root (2 replicas), C is live and holds nothing.
func trimEnv(t *testing.T) (*env, map[string]*trimNode, string) {
	t.Helper()
	e := newEnv(t, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.PassAudits(c)
		c.RebalanceInterval = -1
		c.RepairInterval = -1 // TrimSurplus is called below
	})
	nodes := map[string]*trimNode{}
	for _, name := range []string{"A", "B"} {
		n := &trimNode{k: newKey(t), port: 4641 + 2*len(nodes)}
		n.join(t, e)
		nodes[name] = n
	}
	const root = "bafytrimone"
	if _, err := e.coord.Place(ctxT(t), events.SiteDeployed{Root: root, Replicas: 2, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pinned on A and B", func() bool {
		p, _ := e.coord.Placement(root)
		return len(p.Holders(coordinator.HolderPinned)) == 2
	})
	c := &trimNode{k: newKey(t), port: 4645}
	c.join(t, e)
	nodes["C"] = c
	eventually(t, "three live nodes", func() bool {
		live, err := e.coord.LiveNodes(ctxT(t))
		return err == nil && len(live) == 3
	})
	return e, nodes, root
}

// loseAndReplace closes A's connection until it is lost, re-replicates
// (what node.lost runs: C gets A's copy) and brings A back; A's holding
// is listed again, pinned.
func loseAndReplace(t *testing.T, e *env, nodes map[string]*trimNode, root string) {
	t.Helper()
	ctx := ctxT(t)
	nodes["A"].nc.Close()
	eventually(t, "A lost", func() bool {
		live, err := e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 2
	})
	if _, err := e.coord.Rereplicate(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "C holds the root", func() bool {
		p, _ := e.coord.Placement(root)
		return p.Nodes[nodes["C"].k.id].State == coordinator.HolderPinned
	})
	nodes["A"].join(t, e)
	eventually(t, "A back", func() bool {
		live, err := e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 3
	})
}

// A holder lost and replaced that comes back with its copy leaves the
// root with three live copies for two replicas: the copy that came back
// (not checked since its node joined again) is dropped and its node told
// to unpin (or, when the drop came as it was joining, left out of its
// placed list); the two audited copies stay. Before, nothing dropped it, and
// every node that ever held a root kept holding it.
func TestSurplusCopyOfAReturningHolderDropped(t *testing.T) {
	e, nodes, root := trimEnv(t)
	loseAndReplace(t, e, nodes, root)
	ctx := ctxT(t)
	p, _ := e.coord.Placement(root)
	if got := p.Holders(coordinator.HolderPinned); len(got) != 3 {
		t.Fatalf("before the trim, pinned holders %v, want A, B and C", got)
	}
	n, err := e.coord.TrimSurplus(ctx)
	if err != nil || n != 1 {
		t.Fatalf("TrimSurplus = %d, %v; want 1 dropped", n, err)
	}
	p, _ = e.coord.Placement(root)
	want := []string{nodes["B"].k.id, nodes["C"].k.id}
	slices.Sort(want)
	if got := p.Holders(coordinator.HolderPinned); !slices.Equal(got, want) || len(p.Nodes) != 2 {
		t.Fatalf("after the trim, holders %+v, want B and C pinned", p.Nodes)
	}
	eventually(t, "A told to unpin", func() bool { return nodes["A"].unpinned(root) })
	if nodes["B"].unpinned(root) || nodes["C"].unpinned(root) {
		t.Fatal("a kept holder was told to unpin")
	}
	// Nothing more to drop.
	if n, err := e.coord.TrimSurplus(ctx); err != nil || n != 0 {
		t.Fatalf("second TrimSurplus = %d, %v; want 0", n, err)
	}
}

// A lost holder is not dropped, and nothing is dropped below the
// replicas: with A back and B lost, the root has two live copies for two
// replicas.
func TestSurplusNotCountedOnLostHolders(t *testing.T) {
	e, nodes, root := trimEnv(t)
	loseAndReplace(t, e, nodes, root)
	ctx := ctxT(t)
	nodes["B"].nc.Close()
	eventually(t, "B lost", func() bool {
		live, err := e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 2
	})
	if n, err := e.coord.TrimSurplus(ctx); err != nil || n != 0 {
		p, _ := e.coord.Placement(root)
		t.Fatalf("TrimSurplus with B lost = %d, %v; want nothing dropped (%+v)", n, err, p.Nodes)
	}
	p, _ := e.coord.Placement(root)
	if len(p.Nodes) != 3 {
		t.Fatalf("holders %+v, want A, B and C still listed", p.Nodes)
	}
}
