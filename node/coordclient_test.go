package node_test

import (
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// The client reconnects with backoff when its coordinator goes away, here
// to a second coordinator sharing the bus and the address.
func TestCoordClientReconnects(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	newCoord := func() *coordinator.Coordinator {
		c, err := coordinator.New(t.Context(), coordinator.Config{Bus: bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: 20, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var cur atomic.Pointer[coordinator.Coordinator]
	cur.Store(newCoord())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().Handler().ServeHTTP(w, r) }))
	defer srv.Close()

	key, rec := testRecord(t)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: srv.URL, Key: key,
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitUntil(t, "first join", func() bool { return nc.State().Joined })
	first := nc.State().Session

	old := cur.Load()
	c2 := newCoord()
	cur.Store(c2)
	old.Close() // going away: the client reconnects, to c2
	waitUntil(t, "second join", func() bool { s := nc.State(); return s.Joined && s.Session != first && s.Joins == 2 })
	waitUntil(t, "listed by c2", func() bool {
		live, err := c2.LiveNodes(t.Context())
		return err == nil && len(live) == 1 && live[0].Node() == rec.Record.NodeID && live[0].Coordinator == c2.ID()
	})
}

// testRecord is a fresh node key and a valid record of it.
func testRecord(t *testing.T) (ed25519.PrivateKey, noderecord.Signed) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := noderecord.Sign(noderecord.Record{
		HTTP: "http://127.0.0.1:4001", Issued: now.Add(-time.Minute), Expires: now.Add(time.Hour),
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, rec
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
