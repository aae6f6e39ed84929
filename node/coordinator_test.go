package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// A node with Config.Coordinator joins over WebSocket while it runs,
// reports its status in heartbeats, and leaves when Run ends.
func TestJoinsCoordinator(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	c, err := coordinator.New(t.Context(), coordinator.Config{Bus: bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, AllowPrivateAddrs: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	fx := buildFixture(t)
	n := newNode(t, node.Config{Coordinator: srv.URL, OperatorToken: testOperator(t, c), Region: "ZZ", Version: "v-test"})
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(fx.car)); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.CoordinatorState(); ok {
		t.Fatal("coordinator state before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	var st coordinator.NodeState
	testutil.EventuallyErr(t, 10*time.Second, "the node live with a status", func() error {
		live, err := c.LiveNodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(live) == 1 && live[0].Status.Blocks > 0 {
			st = live[0]
			return nil
		}
		return fmt.Errorf("live nodes %+v", live)
	})
	if st.Node() != n.ID() || st.Record.Record.HTTP != n.HTTPURL() {
		t.Fatalf("registered %s %s, want %s %s", st.Node(), st.Record.Record.HTTP, n.ID(), n.HTTPURL())
	}
	hb := st.Status
	if hb.Blocks != int64(len(fx.blocks)) || hb.Version != "v-test" || hb.Region != "ZZ" || hb.FreeDisk <= 0 || hb.Capacity < hb.FreeDisk || hb.Load != 0 {
		t.Fatalf("status %+v (blocks want %d)", hb, len(fx.blocks))
	}
	// The coordinator records the node live before its welcome reaches
	// the node: the node's own view may lag a little.
	testutil.EventuallyErr(t, 10*time.Second, "the node's view of its join", func() error {
		if cs, ok := n.CoordinatorState(); !ok || !cs.Joined {
			return fmt.Errorf("CoordinatorState = %+v, %v", cs, ok)
		}
		return nil
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil
	testutil.EventuallyErr(t, 10*time.Second, "the node lost after Run ended", func() error {
		s, _ := c.NodeStates(t.Context())
		if len(s) == 1 && s[0].State == coordinator.StateLost {
			if s[0].Reason != "node left" {
				t.Fatalf("lost for %q, want node left", s[0].Reason)
			}
			return nil
		}
		return fmt.Errorf("node states %+v", s)
	})
}
