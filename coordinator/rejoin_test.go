package coordinator_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// A network that restarts sees its nodes rejoin one by one: a root short
// of live holders right after the coordinator starts is not an alarm
// (the devnet warned "under-replicated" on every restart, a millisecond
// before its second node joined). Once the nodes had a heartbeat deadline
// to come back, it is.
func TestRereplicateQuietWhileNodesRejoin(t *testing.T) {
	var logs syncBuffer
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	var deadline time.Duration
	e := newEnv(t, func(c *coordinator.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
		deadline = c.HeartbeatInterval * time.Duration(c.MissedHeartbeats)
	})
	a := &pinCounter{fails: map[string]int{}, orders: map[string]int{}, srcs: map[string][]string{}}
	joinPinner(t, e, 4301, a)
	ctx := ctxT(t)
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafyshort", Replicas: 2}); !errors.Is(err, coordinator.ErrTooFewNodes) {
		t.Fatalf("place 2 copies on 1 node: %v", err)
	}
	logs.take()
	if _, err := e.coord.Rereplicate(ctx); err != nil {
		t.Fatal(err)
	}
	if out := logs.take(); strings.Contains(out, "level=WARN") || !strings.Contains(out, "under-replicated while nodes rejoin") {
		t.Fatalf("right after start, logged:\n%s", out)
	}
	now.Add(int64(deadline + time.Second))
	if _, err := e.coord.Rereplicate(ctx); err != nil {
		t.Fatal(err)
	}
	if out := logs.take(); !strings.Contains(out, "level=WARN msg=under-replicated") {
		t.Fatalf("a heartbeat deadline after start, logged:\n%s", out)
	}
}
