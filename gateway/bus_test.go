package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/asn"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// missedHeartbeats gives the tests' coordinators (a heartbeat every 50 ms)
// a 1 s window before a node is lost, scaled: a loaded machine delays
// heartbeats.
var missedHeartbeats = int(testutil.Scale(time.Second) / (50 * time.Millisecond))

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
	return coordinator.Config{HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, AllowPrivateAddrs: true}
}

// acceptURLs takes every record's URLs as proven: for nodes joined with
// hand-made records (joinNode) whose URLs nobody serves.
type acceptURLs struct{}

func (acceptURLs) ProveURLs(context.Context, noderecord.Signed) error { return nil }

// coordHolds, as Config.Holds of startCoordGateway, holds vouchers on
// the coordinator's ledger, as `verity gateway` does.
type coordHolds struct{ Holder }

// startCoordGateway runs a coordinator with cc on cfg.Bus and a gateway
// wired to it as `verity gateway` wires one (its nodes unless cfg has
// some, WebRTC offers, accounts, scores, and its node endpoint as the
// gateway's API), without the control plane.
func startCoordGateway(t *testing.T, cfg Config, cc coordinator.Config) *testGateway {
	t.Helper()
	cc.Bus = cfg.Bus
	cc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	coord, err := coordinator.New(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coord.Close() }) // after the gateway's cleanup
	opToken, err := coord.CreateOperator(t.Context(), "test-"+coord.ID())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes == nil {
		cfg.Nodes = coord
	}
	if cfg.ScoreSink == nil {
		cfg.ScoreSink = coord.Router()
	}
	cfg.Offers, cfg.Accounts, cfg.API = coord, coord, coord.Handler()
	if _, ok := cfg.Holds.(coordHolds); ok {
		cfg.Holds = coord.Ledger()
	}
	tg := startGateway(t, cfg)
	tg.coord, tg.opToken = coord, opToken
	return tg
}

// joinNode joins a node keyed by seed to the gateway's coordinator with rec
// and returns its client.
func joinNode(t *testing.T, tg *testGateway, seed byte, rec noderecord.Signed) *node.CoordClient {
	t.Helper()
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL:           tg.URL(),
		Key:           sitetest.Key(seed),
		OperatorToken: tg.opToken,
		Record:        func() (noderecord.Signed, error) { return rec, nil },
		Status:        func() nodeproto.Heartbeat { return nodeproto.Heartbeat{Version: "test", Blocks: 7} },
		MinBackoff:    20 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// waitFor waits until cond holds, for at most 10 s (scaled).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

func (tg *testGateway) session(t *testing.T, site string) api.Session {
	t.Helper()
	resp, body := tg.get(t, tg.SiteURL(site)+SessionPath[1:])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	var s api.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// With a Bus, nodes join the gateway's own coordinator over WebSocket and
// the session lists exactly the live ones.
func TestBusNodesJoinTheGateway(t *testing.T) {
	bus := openBus(t, "gw-test")
	cc := testCoordinator()
	cc.URLProver = acceptURLs{}
	tg := startCoordGateway(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:   bus,
	}, cc)
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

// The API (here the coordinator's connect endpoint) is on the gateway's
// own host only: a site origin never upgrades, and a gateway without an
// API has no endpoint.
func TestConnectPathOnlyOnOwnHost(t *testing.T) {
	bus := openBus(t, "gw-test")
	tg := startCoordGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Bus: bus}, coordinator.Config{})
	// A GET without upgrade headers reaches the coordinator, which asks
	// for an upgrade; on a site origin the path is just content.
	if resp, _ := tg.get(t, tg.URL()+nodeproto.ConnectPath); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("connect path on the gateway host without upgrade: %d, want 426", resp.StatusCode)
	}
	if resp, _ := tg.get(t, tg.SiteURL("demo")+nodeproto.ConnectPath[1:]); resp.StatusCode == http.StatusUpgradeRequired {
		t.Fatal("connect path served on a site origin")
	}

	plain := startGateway(t, Config{Sites: NewStaticSites(nil), Nodes: StaticNodes{}})
	if resp, _ := plain.get(t, plain.URL()+nodeproto.ConnectPath); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("connect path without an API: %d, want 404", resp.StatusCode)
	}
	if _, err := New(Config{Sites: NewStaticSites(nil)}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without Nodes: %v", err)
	}
	if _, err := New(Config{Nodes: StaticNodes{}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without Sites: %v", err)
	}
}

// Sessions list the coordinator's nodes ranked for the visitor's address:
// with loopback in the ASN table, the node on loopback comes first for a
// loopback visitor, whatever the order of node ids.
func TestSessionRankedByRouter(t *testing.T) {
	table, err := asn.Load(strings.NewReader("127.0.0.0/8 64511 ZZ\n203.0.113.0/24 64499 US\n"))
	if err != nil {
		t.Fatal(err)
	}
	cc := testCoordinator()
	cc.URLProver = acceptURLs{}
	cc.Router = coordinator.NewRouter(coordinator.RouterConfig{Table: table})
	tg := startCoordGateway(t, Config{Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}), Bus: openBus(t, "gw")}, cc)
	// Seeds chosen so that the far node has the smaller id: unranked, it
	// would come first.
	far, near := sitetest.RecordAt(t, 2, "203.0.113.5"), sitetest.RecordAt(t, 1, "127.0.0.1")
	if far.Record.NodeID > near.Record.NodeID {
		t.Fatal("seeds no longer order the ids as the test needs")
	}
	joinNode(t, tg, 2, far)
	joinNode(t, tg, 1, near)
	waitFor(t, "two nodes in the session", func() bool { return len(tg.session(t, "demo").Nodes) == 2 })
	s := tg.session(t, "demo")
	if s.Nodes[0].ID != near.Record.NodeID || s.Nodes[1].ID != far.Record.NodeID {
		t.Fatalf("session order %s, %s; want the loopback node %s first", s.Nodes[0].ID, s.Nodes[1].ID, near.Record.NodeID)
	}
}
