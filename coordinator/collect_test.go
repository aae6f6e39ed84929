package coordinator_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// labelSource claims the labels with its prefix and references refs.
type labelSource struct {
	prefix string
	refs   atomic.Pointer[map[string]bool]
}

func (s *labelSource) Claims(label string) bool { return strings.HasPrefix(label, s.prefix) }

func (s *labelSource) Referenced(context.Context) (map[string]bool, error) {
	if m := s.refs.Load(); m != nil {
		return *m, nil
	}
	return nil, nil
}

// collectorClock is a clock a test moves (now, in Unix nanoseconds) and
// the config of a coordinator that reads it, with a grace period of a
// minute and passes run only when the test calls Collect.
func collectorClock() (*atomic.Int64, func(*coordinator.Config)) {
	now := new(atomic.Int64)
	now.Store(time.Now().UnixNano())
	return now, func(c *coordinator.Config) {
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
		c.CollectInterval = -1
		c.CollectGrace = time.Minute
	}
}

// The collector takes nothing without a source, nothing a source does not
// claim every label of, and runs on one coordinator of a cluster at a
// time: a second coordinator on the same bus does nothing while the
// first holds the lease, and takes over once it lapses.
func TestCollectorOneAtATimeAndOnlyClaimedLabels(t *testing.T) {
	now, mod := collectorClock()
	bus := openBus(t)
	a := newCoordinator(t, bus, mod)
	b := newCoordinator(t, bus, mod)
	ctx := ctxT(t)
	for _, d := range []events.SiteDeployed{
		{Site: "s3_bkt", Root: "bafyobject"},     // an S3 object's content
		{Site: "blog", Root: "bafysite"},         // a site's
		{Site: "s3_bkt", Root: "bafyshared"},     // both
		{Site: "blog", Root: "bafyshared"},       //
		{Site: "s3_bkt", Root: "bafyreferenced"}, // still in a bucket
		{Site: "", Root: "bafynolabel"},          // placed for nobody known
	} {
		d.Replicas = 1
		if _, err := a.Place(ctx, d); err != nil && !errors.Is(err, coordinator.ErrTooFewNodes) {
			t.Fatal(err)
		}
	}
	if st, err := a.Collect(ctx); err != nil || !reflect.DeepEqual(st, coordinator.CollectStats{}) {
		t.Fatalf("without a source: %+v, %v", st, err)
	}
	src := &labelSource{prefix: "s3_"}
	src.refs.Store(&map[string]bool{"bafyreferenced": true})
	a.AddReferenceSource(src)
	b.AddReferenceSource(src)
	st, err := a.Collect(ctx)
	if err != nil || st.Candidates != 1 || st.Stamped != 1 {
		t.Fatalf("first pass: %+v, %v; want only bafyobject stamped", st, err)
	}
	now.Add(int64(2 * time.Minute)) // past the grace period
	if st, err := b.Collect(ctx); err != nil || !reflect.DeepEqual(st, coordinator.CollectStats{}) {
		t.Fatalf("the second coordinator, while the first holds the lease: %+v, %v", st, err)
	}
	st, err = a.Collect(ctx)
	if err != nil || st.Collected != 1 {
		t.Fatalf("past the grace period: %+v, %v", st, err)
	}
	for _, root := range []string{"bafysite", "bafyshared", "bafyreferenced", "bafynolabel"} {
		if _, ok := a.Placement(root); !ok {
			t.Fatalf("%s collected", root)
		}
	}
	// On the bus (the coordinator's own mirror follows its watch).
	pkv, err := bus.KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pkv.Get(ctx, "bafyobject"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("bafyobject still placed: %v", err)
	}
	// The lease lapses (its holder stopped): the other one takes over.
	a.Close()
	now.Add(int64(time.Hour))
	src.refs.Store(&map[string]bool{})
	// b's view of the lease and of the placements follows the bus: the
	// first pass after the handover may come before it.
	testutil.Eventually(t, testutil.Scale(10*time.Second), "the second coordinator stamps once the lease lapsed", func() bool {
		st, err := b.Collect(ctx)
		return err == nil && st.Stamped == 1
	})
}

// A repair that read a placement before the collector deleted it (a
// re-replication pass on a node.lost, an audit that failed a holder, a
// node out of pin attempts: each places the root again from what it
// read) tops up a placement that exists; it does not make the collected
// one again, without its labels, where no collector would ever look at
// it again and its new holders would keep it for nobody.
func TestCollectedRootNotPlacedAgainByARepair(t *testing.T) {
	now, mod := collectorClock()
	bus := openBus(t)
	a := newCoordinator(t, bus, mod)
	ctx := ctxT(t)
	if _, err := a.Place(ctx, events.SiteDeployed{Site: "s3_bkt", Root: "bafygone", Replicas: 1, CAR: "http://gw/v1/content/bafygone.car"}); err != nil && !errors.Is(err, coordinator.ErrTooFewNodes) {
		t.Fatal(err)
	}
	a.AddReferenceSource(&labelSource{prefix: "s3_"})
	seen := a.Placements() // what a repair pass read, under-replicated (no node)
	if st, err := a.Collect(ctx); err != nil || st.Stamped != 1 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	now.Add(int64(2 * time.Minute))
	if st, err := a.Collect(ctx); err != nil || st.Collected != 1 {
		t.Fatalf("past the grace period: %+v, %v", st, err)
	}
	if _, err := a.RereplicateFrom(ctx, seen); err != nil {
		t.Fatal(err)
	}
	kv, err := bus.KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "bafygone"); err == nil {
		t.Fatalf("the collected root placed again by the repair: %s", e.Value())
	}
}

// failingSource claims the s3_ labels, references nothing, and fails
// its reads from the n-th on.
type failingSource struct {
	calls, failFrom atomic.Int32
}

func (s *failingSource) Claims(label string) bool { return strings.HasPrefix(label, "s3_") }

func (s *failingSource) Referenced(context.Context) (map[string]bool, error) {
	if n := s.calls.Add(1); s.failFrom.Load() > 0 && n >= s.failFrom.Load() {
		return nil, errors.New("bus unreachable")
	}
	return map[string]bool{}, nil
}

// A read of the referents that fails (the last check after the marks, or
// the first) is no answer: the pass fails and collects nothing, the
// marks stay until a pass that reads them.
func TestCollectFailedReadCollectsNothing(t *testing.T) {
	now, mod := collectorClock()
	bus := openBus(t)
	a := newCoordinator(t, bus, mod)
	ctx := ctxT(t)
	if _, err := a.Place(ctx, events.SiteDeployed{Site: "s3_bkt", Root: "bafyobject", Replicas: 1}); err != nil && !errors.Is(err, coordinator.ErrTooFewNodes) {
		t.Fatal(err)
	}
	src := &failingSource{}
	a.AddReferenceSource(src)
	if st, err := a.Collect(ctx); err != nil || st.Stamped != 1 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	now.Add(int64(2 * time.Minute))
	src.failFrom.Store(src.calls.Load() + 2) // the last check of the next pass
	if st, err := a.Collect(ctx); err == nil || st.Collected != 0 {
		t.Fatalf("the last check failed: %+v, %v; want an error and nothing collected", st, err)
	}
	if p, ok := a.Placement("bafyobject"); !ok || p.Collecting.IsZero() {
		t.Fatalf("after the failed check: %+v (placed %v); want it placed and marked", p, ok)
	}
	src.failFrom.Store(src.calls.Load() + 1) // the first read
	if st, err := a.Collect(ctx); err == nil || st.Collected != 0 {
		t.Fatalf("the first read failed: %+v, %v", st, err)
	}
	pkv, err := bus.KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pkv.Get(ctx, "bafyobject"); err != nil {
		t.Fatalf("collected on a failed read: %v", err)
	}
	src.failFrom.Store(0)
	if st, err := a.Collect(ctx); err != nil || st.Collected != 1 {
		t.Fatalf("once the reads work: %+v, %v", st, err)
	}
}

// slowNode is a node whose pin orders wait for release before they are
// recorded (and answered pinned): a pin order's goroutine that runs
// after the unpin that came after it.
type slowNode struct {
	ordered chan string // each pin order as it starts
	release chan struct{}

	mu     sync.Mutex
	pins   map[string]bool
	unpins int
}

func (n *slowNode) pinned(root string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pins[root]
}

func (n *slowNode) unpinned() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unpins
}

func (n *slowNode) join(t *testing.T, e *env) {
	t.Helper()
	k := newKey(t)
	rec := signedRecord(t, k, 4651)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		OnPin: func(ctx context.Context, p nodeproto.Pin) error {
			n.ordered <- p.Root
			select {
			case <-n.release:
			case <-ctx.Done():
				return ctx.Err()
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			n.pins[p.Root] = true
			return nil
		},
		OnUnpin: func(_ context.Context, root string, _ func() bool) {
			n.mu.Lock()
			defer n.mu.Unlock()
			delete(n.pins, root)
			n.unpins++
		},
		MinBackoff: 10 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	eventually(t, "join", func() bool { return nc.State().Joined })
}

// A holder may record a root after the unpin that collected it: the
// node handles each message on a goroutine of its own, and the unpin's
// can run first, finding nothing to drop. It answers pinned then; the
// coordinator tells it again to unpin the root, which nothing places
// there, or it would keep the root and every block it reaches (the
// objects of a bucket's earlier root) until its next session.
func TestRootPinnedAfterItsUnpinIsUnpinned(t *testing.T) {
	// The real clock and a short grace: a clock moved forward would also
	// age the node's heartbeats, and a coordinator that took it for dead
	// meanwhile would not tell it to unpin (this node does not act on the
	// placed list it is sent when it joins again).
	const grace = 50 * time.Millisecond
	e := newEnv(t, func(c *coordinator.Config) {
		c.CollectInterval = -1
		c.CollectGrace = grace
		c.URLProver = acceptURLs{}
		coordinator.PassAudits(c)
		c.RebalanceInterval = -1
		c.RepairInterval = -1
	})
	n := &slowNode{ordered: make(chan string, 4), release: make(chan struct{}), pins: map[string]bool{}}
	n.join(t, e)
	ctx := ctxT(t)
	const root = "bafyslowpin"
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Site: "s3_bkt", Root: root, Replicas: 1, CAR: "http://gw/v1/content/" + root + ".car"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.ordered:
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no pin order")
	}
	e.coord.AddReferenceSource(&labelSource{prefix: "s3_"})
	if st, err := e.coord.Collect(ctx); err != nil || st.Stamped != 1 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	time.Sleep(2 * grace)
	if st, err := e.coord.Collect(ctx); err != nil || st.Collected != 1 {
		t.Fatalf("past the grace period: %+v, %v", st, err)
	}
	eventually(t, "the holder told to unpin", func() bool { return n.unpinned() == 1 })
	close(n.release) // the pin order's goroutine runs now, and answers pinned
	eventually(t, "the root pinned after its unpin dropped", func() bool { return n.unpinned() == 2 && !n.pinned(root) })
}
