package events_test

import (
	"context"
	"errors"
	"testing"

	"github.com/verity-cdn/verity/internal/events"
)

// Follow replays the last N events, then delivers new ones as they are
// stored, filtered by type, and stops cleanly with its context.
func TestFollow(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	for _, site := range []string{"a", "b", "c"} {
		if _, err := b.Emit(ctx, events.TypeSitePublished, events.SitePublished{Site: site, Root: "bafy" + site, Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Emit(ctx, events.TypeNodeJoined, events.NodeJoined{Node: "n1"}); err != nil {
		t.Fatal(err)
	}

	fctx, cancel := context.WithCancel(ctx)
	got := make(chan events.Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- b.Follow(fctx, events.FollowOptions{Types: []events.Type{events.TypeSitePublished}, Last: 3}, func(ev events.Event) error {
			got <- ev
			return nil
		})
	}()
	// The last 3 stored events are b, c and the node event; the filter
	// keeps b and c.
	for _, want := range []string{"b", "c"} {
		var p events.SitePublished
		if err := next(t, got).Decode(&p); err != nil || p.Site != want {
			t.Fatalf("replayed %+v (%v), want site %s", p, err, want)
		}
	}
	if _, err := b.Emit(ctx, events.TypeNodeLost, events.NodeLost{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Emit(ctx, events.TypeSitePublished, events.SitePublished{Site: "d", Root: "bafyd", Version: 1}); err != nil {
		t.Fatal(err)
	}
	var p events.SitePublished
	if err := next(t, got).Decode(&p); err != nil || p.Site != "d" {
		t.Fatalf("live event %+v (%v), want site d", p, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow after cancel: %v", err)
	}

	// NoWait delivers what is stored and returns.
	var n int
	if err := b.Follow(ctx, events.FollowOptions{Last: 100, NoWait: true}, func(events.Event) error { n++; return nil }); err != nil || n != 6 {
		t.Fatalf("NoWait: %d events, %v; want all 6 stored", n, err)
	}
	n = 0
	if err := b.Follow(ctx, events.FollowOptions{Types: []events.Type{events.TypeCachePurged}, Last: 100, NoWait: true}, func(events.Event) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("NoWait with nothing matching: %d events, %v", n, err)
	}

	// A handler error ends Follow with that error.
	stop := errors.New("enough")
	err := b.Follow(ctx, events.FollowOptions{Last: 1}, func(events.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("Follow = %v, want the handler's error", err)
	}
	if err := b.Follow(ctx, events.FollowOptions{Types: []events.Type{"bad type!"}}, func(events.Event) error { return nil }); err == nil {
		t.Fatal("invalid type accepted")
	}
}
