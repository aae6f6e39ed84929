package events_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// startCluster starts n clustered NATS servers on loopback and returns
// their client URLs; they are shut down at cleanup.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	c := newCluster(t, n)
	for i := range n {
		c.start(i)
	}
	c.waitMetaLeader()
	return c.urls
}

// testCluster is a cluster of NATS servers routed to each other, started
// one by one.
type testCluster struct {
	t       *testing.T
	ports   []int
	routes  string
	servers []*server.Server
	urls    []string
}

func newCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, ports: make([]int, n)}
	routes := make([]string, n)
	base := testutil.FreePorts(t, n)
	for i := range c.ports {
		c.ports[i] = base + i
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", c.ports[i])
	}
	c.routes = strings.Join(routes, ",")
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	return c
}

// start starts server i and returns its client URL.
func (c *testCluster) start(i int) string {
	c.t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: fmt.Sprintf("leader-%d", i+1),
		Host:       "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: c.t.TempDir(), NoSigs: true,
		Cluster: server.ClusterOpts{Name: "leader-reads", Host: "127.0.0.1", Port: c.ports[i]},
		Routes:  server.RoutesFromStr(c.routes),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	s.Start()
	c.servers = append(c.servers, s)
	if !s.ReadyForConnections(testutil.Scale(10 * time.Second)) {
		c.t.Fatalf("nats server %d not ready", i+1)
	}
	c.urls = append(c.urls, s.ClientURL())
	return s.ClientURL()
}

// waitMetaLeader waits until one of the started servers leads the
// JetStream meta group.
func (c *testCluster) waitMetaLeader() {
	c.t.Helper()
	testutil.Eventually(c.t, testutil.Scale(30*time.Second), "a JetStream meta leader", func() bool {
		for _, s := range c.servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
}

// A bus opened on a cluster that is still forming (one of three servers
// not started yet: no meta leader, or no peers to place a stream of three
// replicas on) waits for it within ConnectTimeout, instead of failing: servers and
// coordinators of a cluster start in any order.
func TestOpenWaitsForFormingCluster(t *testing.T) {
	c := newCluster(t, 3)
	url := c.start(0)
	c.start(1)
	opened := make(chan error, 1)
	go func() {
		b, err := events.Open(ctxT(t), events.Config{URL: url, Replicas: 3, Name: "forming-test",
			ConnectTimeout: testutil.Scale(30 * time.Second), Logger: testLogger(t)})
		if err == nil {
			b.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned before the third server started: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	c.start(2)
	if err := <-opened; err != nil {
		t.Fatalf("Open once the cluster formed: %v", err)
	}
}

// A cluster that never forms fails Open at ConnectTimeout, saying so.
func TestOpenFailsWhenClusterNeverForms(t *testing.T) {
	c := newCluster(t, 3)
	url := c.start(0)
	c.start(1)
	_, err := events.Open(ctxT(t), events.Config{URL: url, Replicas: 3, Name: "never-test",
		ConnectTimeout: time.Second, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "did not become ready") {
		t.Fatalf("Open on a cluster missing a server: %v, want an error saying it did not become ready", err)
	}
}

func TestLeaderKVOnCluster(t *testing.T) {
	urls := startCluster(t, 3)
	b, err := events.Open(ctxT(t), events.Config{URL: strings.Join(urls, ","), Replicas: 3, Name: "leader-test",
		ConnectTimeout: testutil.Scale(30 * time.Second), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	kv, err := b.KV(events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	lkv, err := b.LeaderKV(events.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := kv.Put(ctx, k, []byte(k+"1")); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := kv.Put(ctx, "a", []byte("a2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// Read through a client of each server in turn: two of them are not
	// the stream's leader.
	for i, url := range urls {
		bi, err := events.Open(ctx, events.Config{URL: url, Replicas: 3, Name: fmt.Sprintf("leader-test-%d", i),
			ConnectTimeout: testutil.Scale(30 * time.Second), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		li, err := bi.LeaderKV(events.BucketLeases)
		if err != nil {
			t.Fatal(err)
		}
		e, err := li.Get(ctx, "a")
		if err != nil || string(e.Value()) != "a2" || e.Revision() != rev || e.Key() != "a" {
			t.Fatalf("server %d: get a: %v %+v", i, err, e)
		}
		for _, k := range []string{"b", "nothing"} {
			if _, err := li.Get(ctx, k); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("server %d: get %s: %v, want ErrKeyNotFound", i, k, err)
			}
		}
		lister, err := li.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"a", "c"}) {
			t.Fatalf("server %d: keys %v, want [a c]", i, keys)
		}
		bi.Close()
	}
	if _, err := events.Update(ctx, lkv, "c", func(old []byte) ([]byte, error) { return append(old, '+'), nil }); err != nil {
		t.Fatal(err)
	}
	// Read back from the leader: a direct get of kv may be answered by a
	// replica that has not applied the update yet (the very staleness
	// LeaderKV is for).
	if e, err := lkv.Get(ctx, "c"); err != nil || string(e.Value()) != "c1+" {
		t.Fatalf("after update: %v %v", err, e)
	}
}
