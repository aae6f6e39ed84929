package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// moveInFlight is a rebalancing move under way: a root held by X and
// Other (2 replicas) is being moved from X to C, whose pin waits for
// release.
type moveInFlight struct {
	e              *env
	moved          string
	from, other, c string
	port           map[string]int
	client         map[string]*node.CoordClient
	release        chan struct{}
}

// startMove: A and B hold two roots (2 replicas), C joins, Rebalance
// moves one root's copy from X (A or B) to C.
func startMove(t *testing.T, mod func(*coordinator.Config)) *moveInFlight {
	t.Helper()
	e := newEnv(t, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.PassAudits(c) // mod may set its own
		c.RebalanceInterval = -1  // Rebalance is called below
		if mod != nil {
			mod(c)
		}
	})
	ctx := ctxT(t)
	m := &moveInFlight{e: e, port: map[string]int{}, client: map[string]*node.CoordClient{}, release: make(chan struct{})}
	for _, port := range []int{4611, 4613} {
		k, nc := joinPinner(t, e, port, &pinCounter{fails: map[string]int{}, orders: map[string]int{}, srcs: map[string][]string{}})
		m.port[k.id], m.client[k.id] = port, nc
	}
	for _, r := range []string{"bafymoveone", "bafymovetwo"} {
		if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: r, Replicas: 2, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, r+" pinned on both", func() bool {
			p, _ := e.coord.Placement(r)
			return len(p.Holders(coordinator.HolderPinned)) == 2
		})
	}
	kc := newKey(t)
	rec := signedRecord(t, kc, 4615)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: kc.priv, OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		OnPin: func(ctx context.Context, _ nodeproto.Pin) error {
			select {
			case <-m.release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		MinBackoff: 10 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	eventually(t, "three live nodes", func() bool {
		live, err := e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 3
	})
	m.c = kc.id
	if m.moved, err = e.coord.Rebalance(ctx); err != nil || m.moved == "" {
		t.Fatalf("rebalance: %q %v", m.moved, err)
	}
	p, _ := e.coord.Placement(m.moved)
	m.from = p.Nodes[kc.id].Replaces
	for id := range m.port {
		if id != m.from {
			m.other = id
		}
	}
	return m
}

// finish lets C's pin succeed and checks, once C passed its audit, that
// the root still has 2 live holders that have not failed it.
func (m *moveInFlight) finish(t *testing.T) {
	t.Helper()
	ctx := ctxT(t)
	close(m.release)
	eventually(t, "C passed its audit", func() bool {
		p, _ := m.e.coord.Placement(m.moved)
		return p.Nodes[m.c].State == coordinator.HolderPinned
	})
	good := func() (int, coordinator.Placement) {
		live, _ := m.e.coord.LiveNodes(ctx)
		p, _ := m.e.coord.Placement(m.moved)
		n := 0
		for _, s := range live {
			if h, ok := p.Nodes[s.Node()]; ok && h.State != coordinator.HolderFailed {
				n++
			}
		}
		return n, p
	}
	if n, p := good(); n < 2 {
		t.Fatalf("after the move the root has %d live holder(s) not failed, want 2: %+v", n, p.Nodes)
	}
}

// A rebalancing move whose root's other holder fails its audit while the
// new holder is pinning: once the new holder passes, the copy it was to
// replace is kept (dropping it would leave one good copy, and nothing
// repairs a root whose holders the placement counts as two).
func TestRebalanceMoveWithFailedAuditKeepsReplicas(t *testing.T) {
	var failBase, movedRoot atomic.Pointer[string]
	m := startMove(t, func(c *coordinator.Config) {
		c.AuditInterval = 50 * time.Millisecond
		coordinator.SetAudit(c, func(_ context.Context, base, root string) error {
			if b, r := failBase.Load(), movedRoot.Load(); b != nil && r != nil && *b == base && *r == root {
				return errors.New("block missing")
			}
			return nil
		})
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", m.port[m.other])
	movedRoot.Store(&m.moved)
	failBase.Store(&base)
	eventually(t, "the other holder failed its audit", func() bool {
		p, _ := m.e.coord.Placement(m.moved)
		return p.Nodes[m.other].State == coordinator.HolderFailed
	})
	m.finish(t)
}

// The same with the other holder lost (node.lost, re-replication) during
// the move.
func TestRebalanceMoveWithLostHolderKeepsReplicas(t *testing.T) {
	m := startMove(t, nil)
	ctx := ctxT(t)
	m.client[m.other].Close()
	eventually(t, "the other holder lost", func() bool {
		live, err := m.e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 2
	})
	if _, err := m.e.coord.Rereplicate(ctx); err != nil { // what node.lost runs
		t.Fatal(err)
	}
	m.finish(t)
}
