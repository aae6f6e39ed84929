package events_test

import (
	"errors"
	"fmt"
	"net"
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
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	var servers []*server.Server
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	var urls []string
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("leader-%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
			Cluster: server.ClusterOpts{Name: "leader-reads", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		servers = append(servers, s)
		if !s.ReadyForConnections(testutil.Scale(10 * time.Second)) {
			t.Fatalf("nats server %d not ready", i+1)
		}
		urls = append(urls, s.ClientURL())
	}
	testutil.Eventually(t, testutil.Scale(30*time.Second), "a JetStream meta leader", func() bool {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return urls
}

// A LeaderKV answers as the bucket does (the latest revision, deletes
// as not found, every live key listed) on a three-server cluster with
// replicated buckets, where only the stream's leader answers its reads,
// to a client of any of the servers; Update works through it.
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
