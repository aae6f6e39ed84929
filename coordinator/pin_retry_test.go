package coordinator_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/node"
)

// pinCounter is a node's OnPin that fails the first fails[root] orders of
// each root (forever with -1) and counts them.
type pinCounter struct {
	mu     sync.Mutex
	fails  map[string]int
	orders map[string]int
	srcs   map[string][]string
	grants map[string]string
}

func (p *pinCounter) onPin(_ context.Context, pin nodeproto.Pin) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orders[pin.Root]++
	p.srcs[pin.Root] = pin.Sources
	if p.grants != nil {
		p.grants[pin.Root] = pin.Grant
	}
	if f := p.fails[pin.Root]; f < 0 || p.orders[pin.Root] <= f {
		return errors.New("fetch failed")
	}
	return nil
}

func (p *pinCounter) count(root string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders[root]
}

func joinPinner(t *testing.T, e *env, port int, pc *pinCounter) (nodeKey, *node.CoordClient) {
	t.Helper()
	k := newKey(t)
	rec := signedRecord(t, k, port)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		OnPin:      pc.onPin,
		MinBackoff: 10 * time.Millisecond,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	eventually(t, "join", func() bool { return nc.State().Joined })
	return k, nc
}

// A failed pin order is sent again after a backoff, not only on the next
// join or loss, and a node that succeeds on a later attempt holds the
// root. The retries are bounded: after PinAttempts failures the node gets
// no more orders for that root, and the root goes to another node when
// one joins, with the first holder listed as a source.
func TestPinRetriedWithBackoffBounded(t *testing.T) {
	_, reqKey, _ := ed25519.GenerateKey(rand.Reader)
	e := newEnv(t, func(c *coordinator.Config) {
		c.RequestKey = reqKey
		c.PinAttempts = 3
		c.PinRetryMin = 20 * time.Millisecond
		c.PinRetryMax = 80 * time.Millisecond
	})
	a := &pinCounter{fails: map[string]int{"bafyflaky": 2, "bafybroken": -1}, orders: map[string]int{}, srcs: map[string][]string{}}
	ka, _ := joinPinner(t, e, 4201, a)
	ctx := ctxT(t)

	// Fails twice, then pins on the third order.
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafyflaky", Replicas: 1, CAR: "http://127.0.0.1:1/flaky.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flaky root pinned", func() bool {
		p, _ := e.coord.Placement("bafyflaky")
		return p.Nodes[ka.id].State == coordinator.HolderPinned
	})
	if n := a.count("bafyflaky"); n != 3 {
		t.Fatalf("flaky root: %d pin orders, want 3", n)
	}
	if p, _ := e.coord.Placement("bafyflaky"); p.Nodes[ka.id].Attempts != 0 {
		t.Fatalf("attempts after success: %d", p.Nodes[ka.id].Attempts)
	}

	// Always fails: exactly PinAttempts orders, then it stays failed.
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafybroken", Replicas: 1, CAR: "http://127.0.0.1:1/broken.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken root given up", func() bool {
		p, _ := e.coord.Placement("bafybroken")
		h := p.Nodes[ka.id]
		return h.State == coordinator.HolderFailed && h.Attempts == 3
	})
	// No further order, proven by a pass of the retry scheduler that
	// starts once the broken root's longest backoff has passed (by the
	// coordinator's clock, the wall clock here), when a retry past
	// PinAttempts would be due: a pass stores the retries it finds due
	// before it ends.
	var passed atomic.Int64 // time of the last pass, Unix ns
	e.coord.OnRetryPass(func(now time.Time) { passed.Store(now.UnixNano()) })
	given, _ := e.coord.Placement("bafybroken")
	due := given.Nodes[ka.id].Since.Add(80 * time.Millisecond) // PinRetryMax
	eventually(t, "a retry pass after the broken root's longest backoff", func() bool {
		return passed.Load() >= due.UnixNano()
	})
	p, _ := e.coord.Placement("bafybroken")
	if h, g := p.Nodes[ka.id], given.Nodes[ka.id]; h.State != g.State || h.Attempts != g.Attempts || !h.Since.Equal(g.Since) {
		t.Fatalf("broken root retried after PinAttempts failures: %+v, was %+v", h, g)
	}
	if n := a.count("bafybroken"); n != 3 {
		t.Fatalf("broken root: %d pin orders, want 3 (PinAttempts)", n)
	}

	// Another node joins: the root goes there, not back to the first,
	// and the order lists no source but the gateway (nobody holds it).
	b := &pinCounter{fails: map[string]int{}, orders: map[string]int{}, srcs: map[string][]string{}, grants: map[string]string{}}
	kb, _ := joinPinner(t, e, 4203, b)
	eventually(t, "broken root placed on the new node", func() bool {
		p, _ := e.coord.Placement("bafybroken")
		return p.Nodes[kb.id].State == coordinator.HolderPinned
	})
	if n := a.count("bafybroken"); n != 3 {
		t.Fatalf("the failed node got %d orders, want still 3", n)
	}

	// Two copies wanted and only a left to take the second: Place skips
	// a, re-replication orders it again as a last resort, afresh.
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafybroken", Replicas: 2}); !errors.Is(err, coordinator.ErrTooFewNodes) {
		t.Fatalf("place on an exhausted node: %v", err)
	}
	if n := a.count("bafybroken"); n != 3 {
		t.Fatalf("Place ordered the exhausted node again (%d orders)", n)
	}
	if _, err := e.coord.Rereplicate(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a last-resort order", func() bool { return a.count("bafybroken") == 4 })

	// A root held by a: an order for b lists a's HTTP as a source.
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafyflaky", Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flaky root on b", func() bool { return b.count("bafyflaky") == 1 })
	b.mu.Lock()
	srcs := b.srcs["bafyflaky"]
	b.mu.Unlock()
	if want := "http://127.0.0.1:4201/ipfs/bafyflaky?format=car"; len(srcs) != 1 || srcs[0] != want {
		t.Fatalf("sources %q, want [%s]", srcs, want)
	}
	// With the grant that lets b, and b only, fetch that root from a
	// holder that requires payment.
	b.mu.Lock()
	grant := b.grants["bafyflaky"]
	b.mu.Unlock()
	g, err := nodeproto.VerifyGrant(grant, time.Now(), payment.NewKeySet(reqKey.Public().(ed25519.PublicKey)))
	if err != nil || g.Node != kb.id || g.CID != "bafyflaky" || g.Scope != nodeproto.GrantDAG {
		t.Fatalf("grant %q: %+v, %v; want one for %s and bafyflaky", grant, g, err, kb.id)
	}
}
