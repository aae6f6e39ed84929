package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/node"
)

// A worker's report about a node reaches that node through the bus and the
// coordinator it is joined to, and shows in the node's own metrics.
func TestReportReachesTheNode(t *testing.T) {
	bus := openBus(t, "gw-report")
	tg := startCoordGateway(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:   bus,
	}, testCoordinator())
	n, err := node.New(node.Config{
		DataDir:       filepath.Join(t.TempDir(), "node"),
		Coordinator:   tg.URL(),
		OperatorToken: tg.opToken,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(t.Context()) }()
	t.Cleanup(func() { n.Close(); <-done })
	waitFor(t, "the node to join", func() bool { return len(tg.session(t, "demo").Nodes) == 1 })

	metrics := func() string {
		resp, err := http.Get(n.HTTPURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for range 3 { // one event now; the other two ride on the next one
		resp, body := tg.do(t, http.MethodPost, tg.SiteURL("demo")+ReportPath[1:],
			strings.NewReader(`{"node":"`+n.ID()+`","reason":"bad-block","detail":"hash mismatch"}`))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("report: %d %s", resp.StatusCode, body)
		}
	}
	waitFor(t, "the node to count the report", func() bool {
		return strings.Contains(metrics(), `verity_node_reported_failures_total{reason="bad-block"} 1`)
	})
	// The event says which site's visitors reported it.
	var got events.NodeReported
	if err := bus.Follow(t.Context(), events.FollowOptions{Types: []events.Type{events.TypeNodeReported}, Last: 10, NoWait: true}, func(ev events.Event) error {
		return ev.Decode(&got)
	}); err != nil {
		t.Fatal(err)
	}
	if got.Node != n.ID() || got.Sites["demo"] != 1 || got.Reasons["bad-block"] != 1 {
		t.Fatalf("node.reported %+v", got)
	}
	// A report about a node nobody knows goes nowhere.
	resp, _ := tg.do(t, http.MethodPost, tg.SiteURL("demo")+ReportPath[1:], strings.NewReader(`{"node":"nnobody","reason":"timeout"}`))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("unknown node report: %d", resp.StatusCode)
	}
	if strings.Contains(metrics(), `reason="timeout"`) {
		t.Fatal("a report about another node was counted")
	}
}
