package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// openBus opens an embedded bus stored in t.TempDir().
func openBus(t *testing.T, name string) *events.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := events.Open(ctx, events.Config{StoreDir: t.TempDir(), Name: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testCoordinator is a coordinator config quick enough for tests.
func testCoordinator() coordinator.Config {
	return coordinator.Config{HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: 20}
}

// joinNode joins a node keyed by seed to the gateway's coordinator with rec
// and returns its client.
func joinNode(t *testing.T, tg *testGateway, seed byte, rec noderecord.Signed) *coordinator.NodeClient {
	t.Helper()
	nc, err := coordinator.NewNodeClient(coordinator.NodeClientConfig{
		URL:        tg.URL(),
		Key:        seedKey(seed),
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		Status:     func() coordinator.Heartbeat { return coordinator.Heartbeat{Version: "test", Blocks: 7} },
		MinBackoff: 20 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func seedKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

// waitFor polls cond every 10 ms for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tg *testGateway) session(t *testing.T, site string) Session {
	t.Helper()
	resp, body := tg.get(t, tg.SiteURL(site)+SessionPath[1:])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	var s Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// With a Bus, nodes join the gateway's own coordinator over WebSocket and
// the session lists exactly the live ones.
func TestBusNodesJoinTheGateway(t *testing.T) {
	bus := openBus(t, "gw-test")
	tg := startGateway(t, Config{
		Sites:       NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:         bus,
		Coordinator: testCoordinator(),
	})
	if tg.Coordinator() == nil {
		t.Fatal("no coordinator with a Bus")
	}
	if s := tg.session(t, "demo"); len(s.Nodes) != 0 {
		t.Fatalf("session lists %d nodes before any joined", len(s.Nodes))
	}
	now := time.Now()
	rec1 := signedRecord(t, 1, "http://127.0.0.1:1", now)
	rec2 := signedRecord(t, 2, "http://127.0.0.1:2", now)
	n1 := joinNode(t, tg, 1, rec1)
	joinNode(t, tg, 2, rec2)
	waitFor(t, "two nodes in the session", func() bool { return len(tg.session(t, "demo").Nodes) == 2 })

	states, err := tg.Coordinator().LiveNodes(t.Context())
	if err != nil || len(states) != 2 || states[0].Status.Version != "test" || states[0].Status.Blocks != 7 {
		t.Fatalf("live nodes %+v: %v", states, err)
	}

	n1.Close() // leaves: gone from the session at once
	waitFor(t, "the node that left to drop out", func() bool {
		s := tg.session(t, "demo")
		return len(s.Nodes) == 1 && s.Nodes[0].ID == rec2.Record.NodeID
	})
}

// The connect endpoint is on the gateway's own host only: a site origin
// never upgrades, and a gateway without a Bus has no endpoint.
func TestConnectPathOnlyOnOwnHost(t *testing.T) {
	bus := openBus(t, "gw-test")
	tg := startGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Bus: bus})
	// A GET without upgrade headers reaches the coordinator, which asks
	// for an upgrade; on a site origin the path is just content.
	if resp, _ := tg.get(t, tg.URL()+coordinator.ConnectPath); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("connect path on the gateway host without upgrade: %d, want 426", resp.StatusCode)
	}
	if resp, _ := tg.get(t, tg.SiteURL("demo")+coordinator.ConnectPath[1:]); resp.StatusCode == http.StatusUpgradeRequired {
		t.Fatal("connect path served on a site origin")
	}

	plain := startGateway(t, Config{Sites: NewStaticSites(nil), Nodes: StaticNodes{}})
	if resp, _ := plain.get(t, plain.URL()+coordinator.ConnectPath); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("connect path without a Bus: %d, want 404", resp.StatusCode)
	}
	if _, err := New(Config{Sites: NewStaticSites(nil)}); err == nil {
		t.Fatal("New accepted neither Nodes nor Bus")
	}
}
