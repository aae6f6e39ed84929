package coordinator

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// An audit asked for while one of the same holding runs is not dropped: it
// runs once the first is done. Dropped, a holding that was failed, ordered
// again and said pinned again in the meantime stayed "auditing" for good.
func TestAuditAskedWhileRunningRunsAgain(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	release := make(chan struct{})
	var calls atomic.Int32
	c, err := New(t.Context(), Config{Bus: bus, Logger: log, NoPlacement: true, audit: func(ctx context.Context, _, _ string) error {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var st NodeState
	st.State, st.LastSeen = StateLive, time.Now()
	st.Record.Record.HTTP = "http://192.0.2.1:4001"
	c.cacheStore("n1", st, 1)

	c.startAudit("n1", "bafyroot")
	testutil.Eventually(t, 10*time.Second, "the first audit running", func() bool { return calls.Load() == 1 })
	c.startAudit("n1", "bafyroot") // the holding said pinned again meanwhile
	close(release)
	testutil.Eventually(t, 10*time.Second, "a second audit", func() bool { return calls.Load() == 2 })
}
