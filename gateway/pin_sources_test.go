package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
)

// startStoppableGateway is startGateway with a stop function, for a test
// that takes a gateway away mid-way; stop is idempotent and also runs at
// cleanup.
func startStoppableGateway(t *testing.T, cfg Config) (*testGateway, func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Assets = testAssets()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := g.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	addr := g.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testGateway{Gateway: g, reg: reg, client: client}, stop
}

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
	gwA, stopA := startStoppableGateway(t, Config{Bus: busA, Coordinator: testCoordinator(), DataDir: t.TempDir(), AdminToken: testAdmin, Replicas: 2})
	gwB, _ := startStoppableGateway(t, Config{Bus: busB, Coordinator: testCoordinator(), DataDir: t.TempDir(), AdminToken: testAdmin, Replicas: 2})

	first, _ := startNodeAt(t, gwB, t.TempDir())
	waitFor(t, "the first node", func() bool {
		live, _ := gwB.Coordinator().LiveNodes(t.Context())
		return len(live) == 1
	})
	token := gwA.createSite(t, "blog")
	carBytes, root := siteCAR(t, testSite())
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
	waitFor(t, "the second node to pin from the first", func() bool {
		p, _ := gwB.Coordinator().Placement(root)
		return slices.Contains(second.Pins(), root) && len(p.Holders(coordinator.HolderPinned)) == 2
	})
	waitFor(t, "publish", func() bool {
		st := gwB.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	resp, body := gwB.get(t, gwB.SiteURL("blog")+"media/big.bin")
	if resp.StatusCode != http.StatusOK || string(body) != string(testSite()["media/big.bin"]) {
		t.Fatalf("served %d, %d bytes", resp.StatusCode, len(body))
	}
}
