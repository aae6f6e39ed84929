package control

import (
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// A deployed CAR is kept only by the gateway that accepted it. Once that
// gateway is gone, a node placed later pulls the root from a live holder
// instead (the pin order lists the holders' trustless CAR URLs), verified
// as always; the site is then published and served by the other gateway.
func TestRereplicationAfterAcceptingGatewayGone(t *testing.T) {
	// One NATS server; each gateway has its own connection to it, as
	// separate processes would, so stopping A drops A's consumers.
	server, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "nats", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	connect := func(name string) *events.Bus {
		b, err := events.Open(t.Context(), events.Config{URL: server.ClientURL(), Name: name, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	busA, busB := connect("gw-a"), connect("gw-b")
	gwA, stopA := startStack(t, busA, Config{AdminToken: testAdmin, Replicas: 2}, gateway.Config{})
	gwB, _ := startStack(t, busB, Config{AdminToken: testAdmin, Replicas: 2}, gateway.Config{})

	first, _ := startNodeAt(t, gwB, t.TempDir())
	waitFor(t, "the first node", func() bool {
		live, _ := gwB.Coordinator().LiveNodes(t.Context())
		return len(live) == 1
	})
	token := gwA.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := gwA.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the first node to pin from gateway A", func() bool { return slices.Contains(first.Pins(), root) })
	if st := gwB.siteStatus(t, "blog", token); st.Site != nil && st.Site.Root == root {
		t.Fatal("published with one copy of two; test premise")
	}

	stopA()
	busA.Close()
	second, _ := startNodeAt(t, gwB, t.TempDir())
	// A chain of steps, each of which a busy machine slows: the second
	// node joins (URL proof), the replication consumer places the root on
	// it, it pins from the first node, its holding is audited.
	testutil.Eventually(t, time.Minute, "the second node to pin from the first", func() bool {
		p, _ := gwB.Coordinator().Placement(root)
		return slices.Contains(second.Pins(), root) && len(p.Holders(coordinator.HolderPinned)) == 2
	})
	waitFor(t, "publish", func() bool {
		st := gwB.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	resp, body := gwB.get(t, gwB.SiteURL("blog")+"media/big.bin")
	if resp.StatusCode != http.StatusOK || string(body) != string(sitetest.Files()["media/big.bin"]) {
		t.Fatalf("served %d, %d bytes", resp.StatusCode, len(body))
	}
}
