package events_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/verity-cdn/verity/internal/events"
)

// BenchmarkSubscribeBacklog is the rate a durable consumer works
// through a backlog of events with a handler that does nothing: the
// bus's own cost per event delivered and acknowledged.
func BenchmarkSubscribeBacklog(b *testing.B) {
	bus, err := events.Open(context.Background(), events.Config{StoreDir: b.TempDir(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	for i := range b.N {
		ev, err := events.NewWithID(fmt.Sprintf("ev-%d", i), events.TypeCachePurged, "gw", events.CachePurged{Site: "s", Gateway: "gw"})
		if err != nil {
			b.Fatal(err)
		}
		if err := bus.Publish(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	done := make(chan struct{})
	n := 0
	b.ResetTimer()
	sub, err := bus.Subscribe(context.Background(), "bench", func(context.Context, events.Event) error {
		if n++; n == b.N {
			close(done)
		}
		return nil
	}, events.TypeCachePurged)
	if err != nil {
		b.Fatal(err)
	}
	<-done
	b.StopTimer()
	sub.Stop()
}
