package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

func newKVSites(t *testing.T, bus *events.Bus) *KVSites {
	t.Helper()
	s, err := NewKVSites(t.Context(), KVSitesConfig{Bus: bus, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect subscribes to types and returns a function listing the events
// received so far.
func collect(t *testing.T, bus *events.Bus, durable string, types ...events.Type) func() []events.Event {
	t.Helper()
	var mu sync.Mutex
	var got []events.Event
	sub, err := bus.Subscribe(t.Context(), durable, func(_ context.Context, ev events.Event) error {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	}, types...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return func() []events.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]events.Event(nil), got...)
	}
}

func TestKVSitesPublishAndRollback(t *testing.T) {
	bus := openBus(t, "gw-a")
	s := newKVSites(t, bus)
	evs := collect(t, bus, "test", events.TypeSitePublished, events.TypeSiteRolledBack)
	var changes []string
	var mu sync.Mutex
	s.WatchSites(func(site gateway.Site, prev string) {
		mu.Lock()
		changes = append(changes, site.Name+":"+prev+">"+site.Root)
		mu.Unlock()
	})
	r1, r2, r3 := testCID(t, "v1"), testCID(t, "v2"), testCID(t, "v3")
	ctx := t.Context()

	rec, err := s.Publish(ctx, "blog", r1)
	if err != nil || rec.Version != 1 || rec.Root != r1 || len(rec.History) != 1 {
		t.Fatalf("first publish: %+v, %v", rec, err)
	}
	if rec, err = s.Publish(ctx, "blog", r2); err != nil || rec.Version != 2 {
		t.Fatalf("second publish: %+v, %v", rec, err)
	}
	if rec, err = s.Publish(ctx, "blog", r2); err != nil || rec.Version != 2 {
		t.Fatalf("publishing the current root again: %+v, %v", rec, err)
	}
	if site, err := s.Site(ctx, "blog"); err != nil || site.Root != r2 {
		t.Fatalf("Site = %+v, %v", site, err)
	}
	// Rollback without a root goes to the previous one, as a new version.
	if rec, err = s.Rollback(ctx, "blog", ""); err != nil || rec.Root != r1 || rec.Version != 3 {
		t.Fatalf("rollback: %+v, %v", rec, err)
	}
	if rec, err = s.Rollback(ctx, "blog", r2); err != nil || rec.Root != r2 || rec.Version != 4 {
		t.Fatalf("rollback to r2: %+v, %v", rec, err)
	}
	if want := []string{api.ActionRollback, api.ActionRollback, api.ActionPublish, api.ActionPublish}; len(rec.History) != 4 || rec.History[0].Action != want[0] || rec.History[3].Root != r1 {
		t.Fatalf("history %+v", rec.History)
	}
	if _, err := s.Rollback(ctx, "blog", r3); !errors.Is(err, ErrNotInHistory) || statusOf(err) != 404 {
		t.Fatalf("rollback to a root never published: %v", err)
	}
	if _, err := s.Rollback(ctx, "nosuch", ""); !errors.Is(err, gateway.ErrUnknownSite) {
		t.Fatalf("rollback of an unknown site: %v", err)
	}
	if _, err := s.Publish(ctx, "solo", r1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(ctx, "solo", ""); !errors.Is(err, ErrNotInHistory) {
		t.Fatalf("rollback of a site with one version: %v", err)
	}

	// A second KVSites on the same bucket sees the same state.
	other := newKVSites(t, bus)
	list, err := other.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "blog" || list[0].Version != 4 || list[1].Name != "solo" {
		t.Fatalf("List = %+v, %v", list, err)
	}

	waitFor(t, "five site events", func() bool { return len(evs()) == 5 })
	got := evs()
	var p events.SitePublished
	if err := got[1].Decode(&p); err != nil || got[1].Type != events.TypeSitePublished || p.Previous != r1 || p.Root != r2 || p.Version != 2 {
		t.Fatalf("second event %s %+v: %v", got[1].Type, p, err)
	}
	var rb events.SiteRolledBack
	if err := got[2].Decode(&rb); err != nil || got[2].Type != events.TypeSiteRolledBack || rb.From != r2 || rb.Root != r1 || rb.Version != 3 {
		t.Fatalf("third event %s %+v: %v", got[2].Type, rb, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"blog:>" + r1, "blog:" + r1 + ">" + r2, "blog:" + r2 + ">" + r1, "blog:" + r1 + ">" + r2, "solo:>" + r1}
	if strings.Join(changes, " ") != strings.Join(want, " ") {
		t.Fatalf("watch calls\n%v\nwant\n%v", changes, want)
	}
}

// Bad input is refused before anything is written.
func TestKVSitesRefuseBadInput(t *testing.T) {
	bus := openBus(t, "gw-a")
	s := newKVSites(t, bus)
	ctx := t.Context()
	for _, tc := range []struct{ name, root string }{
		{"Bad_Name", testCID(t, "r")},
		{"", testCID(t, "r")},
		{"ok", "not-a-cid"},
		{"ok", ""},
	} {
		if _, err := s.Publish(ctx, tc.name, tc.root); err == nil || statusOf(err) != 400 {
			t.Fatalf("Publish(%q, %q) = %v, want a 400 error", tc.name, tc.root, err)
		}
	}
	if _, err := s.Rollback(ctx, "x y", ""); !errors.Is(err, gateway.ErrInvalidSiteName) {
		t.Fatalf("rollback with a bad name: %v", err)
	}
	kv, _ := bus.KV(events.BucketSites)
	if keys, err := kv.ListKeys(ctx); err == nil {
		for k := range keys.Keys() {
			t.Fatalf("key %q written", k)
		}
	}
}

// Two gateways on one NATS server (the second a client of the first's
// embedded server), each with its own mirror of the sites bucket: a publish through one
// purges the cached HTML of both, and each emits cache.purged.
func TestPublishPurgesEveryGateway(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus1, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "gw-1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus1.Close()
	bus2, err := events.Open(t.Context(), events.Config{URL: bus1.ClientURL(), Name: "gw-2", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus2.Close()

	n, err := node.New(node.Config{DataDir: filepath.Join(t.TempDir(), "node"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		n.Close()
	}()
	files := sitetest.Files()
	root1 := sitetest.Import(t, []*node.Node{n}, files)
	files["index.html"] = []byte("<!doctype html><h1>version two</h1>\n")
	root2 := sitetest.Import(t, []*node.Node{n}, files)
	nodes := gateway.StaticNodes{func() noderecord.Signed { return n.Record() }}

	purged := collect(t, bus1, "test", events.TypeCachePurged)
	sites := newKVSites(t, bus1)
	gw1, _ := startGateway(t, gateway.Config{Bus: bus1, Nodes: nodes, Sites: sites})
	gw2, _ := startGateway(t, gateway.Config{Bus: bus2, Nodes: nodes, Sites: newKVSites(t, bus2)})
	if _, err := sites.Publish(t.Context(), "demo", root1); err != nil {
		t.Fatal(err)
	}
	home := func(tg *testGateway) string {
		resp, body := tg.get(t, tg.SiteURL("demo"))
		if resp.StatusCode != 200 {
			return resp.Status + " " + string(body)
		}
		return string(body)
	}
	for _, tg := range []*testGateway{gw1, gw2} {
		var last string
		waitFor(t, "version one on "+tg.URL(), func() bool {
			last = home(tg)
			t.Logf("%q", last)
			return last == string(sitetest.Files()["index.html"])
		})
		home(tg) // now from the cache
	}
	if _, err := sites.Publish(t.Context(), "demo", root2); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []*testGateway{gw1, gw2} {
		waitFor(t, "version two on "+tg.URL(), func() bool { return home(tg) == string(files["index.html"]) })
	}
	waitFor(t, "cache.purged from both gateways", func() bool {
		seen := map[string]bool{}
		for _, ev := range purged() {
			var p events.CachePurged
			if ev.Decode(&p) == nil && p.Site == "demo" && p.Root == root2 {
				seen[p.Gateway] = true
			}
		}
		return seen["gw-1"] && seen["gw-2"]
	})
	if n := len(purged()); n != 2 {
		t.Fatalf("%d cache.purged events, want 2 (one per gateway)", n)
	}
	// Unknown sites are still 404 on a KV-backed gateway.
	if resp, _ := gw2.get(t, gw2.SiteURL("nosuch")); resp.StatusCode != 404 {
		t.Fatalf("unknown site: %d", resp.StatusCode)
	}
	_ = time.Second
}
