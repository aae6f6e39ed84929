package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openBus(t *testing.T, dir string) *events.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := events.Open(ctx, events.Config{
		StoreDir: dir,
		Name:     "test",
		RetryMin: 10 * time.Millisecond,
		RetryMax: 40 * time.Millisecond,
		Logger:   testLogger(t),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collect subscribes and sends every event to the returned channel.
func collect(t *testing.T, b *events.Bus, durable string, types ...events.Type) (<-chan events.Event, *events.Subscription) {
	t.Helper()
	ch := make(chan events.Event, 100)
	sub, err := b.Subscribe(ctxT(t), durable, func(_ context.Context, ev events.Event) error {
		ch <- ev
		return nil
	}, types...)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(sub.Stop)
	return ch, sub
}

func next(t *testing.T, ch <-chan events.Event) events.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no event")
		return events.Event{}
	}
}

// none checks that nothing more arrives once a later marker event has.
func expectMarker(t *testing.T, b *events.Bus, ch <-chan events.Event, typ events.Type) {
	t.Helper()
	marker, err := events.New(typ, "test", "marker")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctxT(t), marker); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next(t, ch)
		if ev.ID == marker.ID {
			return
		}
		t.Fatalf("unexpected event before marker: %+v", ev)
	}
}

func TestPublishSubscribeRoundtrip(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	ch, _ := collect(t, b, "roundtrip", events.TypeSitePublished)
	other, _ := collect(t, b, "nodes-only", events.TypeNodeJoined, events.TypeNodeLost)

	want := events.SitePublished{Site: "blog", Root: "bafyroot", Previous: "bafyold", Version: 2}
	ev, err := b.Emit(ctx, events.TypeSitePublished, want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Emit(ctx, events.TypeNodeJoined, events.NodeJoined{Node: "nabc", Coordinator: "c1"}); err != nil {
		t.Fatal(err)
	}
	got := next(t, ch)
	if got.ID != ev.ID || got.Type != events.TypeSitePublished || got.Source != "test" || got.Time.IsZero() {
		t.Fatalf("envelope = %+v, want id %s", got, ev.ID)
	}
	var p events.SitePublished
	if err := got.Decode(&p); err != nil || p != want {
		t.Fatalf("payload = %+v, %v; want %+v", p, err, want)
	}
	if n := next(t, other); n.Type != events.TypeNodeJoined {
		t.Fatalf("filtered subscriber got %s", n.Type)
	}
	// The site subscriber does not see the node event.
	expectMarker(t, b, ch, events.TypeSitePublished)
}

func TestDedupeByID(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	ch, _ := collect(t, b, "dedupe", events.TypeCachePurged)
	ev, err := events.NewWithID("purge-blog-3", events.TypeCachePurged, "gw1", events.CachePurged{Site: "blog", Gateway: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// A second gateway emitting the same cause with the same id.
	ev2 := ev
	ev2.Source = "gw2"
	if err := b.Publish(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	if got := next(t, ch); got.ID != "purge-blog-3" || got.Source != "gw1" {
		t.Fatalf("got %+v", got)
	}
	expectMarker(t, b, ch, events.TypeCachePurged)
}

func TestDurableResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)

	b := openBus(t, dir)
	ch, sub := collect(t, b, "resume", events.TypeSiteDeployed)
	var ids []string
	for i := range 2 {
		ev, err := b.Emit(ctx, events.TypeSiteDeployed, events.SiteDeployed{Site: "s" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	for _, id := range ids {
		if got := next(t, ch); got.ID != id {
			t.Fatalf("got %s, want %s", got.ID, id)
		}
	}
	kv, err := b.KV(events.BucketSites)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "blog", []byte(`{"root":"bafy1"}`)); err != nil {
		t.Fatal(err)
	}
	sub.Stop()
	// Published while nobody listens.
	missed, err := b.Emit(ctx, events.TypeSiteDeployed, events.SiteDeployed{Site: "while-away"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := b.Publish(ctx, missed); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}

	b2 := openBus(t, dir)
	kv2, err := b2.KV(events.BucketSites)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(ctx, "blog")
	if err != nil || string(e.Value()) != `{"root":"bafy1"}` {
		t.Fatalf("KV after restart: %v %q", err, e)
	}
	ch2, _ := collect(t, b2, "resume", events.TypeSiteDeployed)
	if got := next(t, ch2); got.ID != missed.ID {
		t.Fatalf("resumed at %s, want the missed event %s", got.ID, missed.ID)
	}
	expectMarker(t, b2, ch2, events.TypeSiteDeployed)
}

// An event published as a subscriber stops goes to the next subscriber
// at once, whether it came just after Stop or was on its way as it
// stopped. The stopped subscriber's pull request, still outstanding on
// the server, took it when its inbox was unsubscribed only after Stop
// returned, and the client dropped what reached an inbox it had
// unsubscribed: either way the event waited out AckWait (30 s).
func TestEventAtStopGoesToNextSubscriber(t *testing.T) {
	for _, tc := range []struct {
		name      string
		emitFirst bool
	}{{"published after Stop", false}, {"on its way at Stop", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBus(t, t.TempDir())
			ctx := ctxT(t)
			emit := func() events.Event {
				ev, err := b.Emit(ctx, events.TypeSiteDeployed, events.SiteDeployed{Site: "s"})
				if err != nil {
					t.Fatal(err)
				}
				return ev
			}
			for round := range 200 {
				ch1, sub1 := collect(t, b, "handover", events.TypeSiteDeployed)
				var ev events.Event
				if tc.emitFirst {
					time.Sleep(5 * time.Millisecond) // sub1's pull request is on the server
					ev = emit()
					sub1.Stop()
				} else {
					sub1.Stop()
					ev = emit()
				}
				got, handled := events.Event{}, false
				select {
				case got = <-ch1: // handled before Stop
					handled = true
				default:
				}
				if handled {
					if got.ID != ev.ID {
						t.Fatalf("round %d: got %s, want %s", round, got.ID, ev.ID)
					}
					continue
				}
				ch, sub2 := collect(t, b, "handover", events.TypeSiteDeployed)
				select {
				case got := <-ch:
					if got.ID != ev.ID {
						t.Fatalf("round %d: got %s, want %s", round, got.ID, ev.ID)
					}
				case <-time.After(testutil.Scale(5 * time.Second)):
					t.Fatalf("round %d: the event was not delivered to the next subscriber", round)
				}
				sub2.Stop()
			}
		})
	}
}

func TestHandlerErrorRedelivers(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	var calls atomic.Int32
	done := make(chan events.Event, 1)
	sub, err := b.Subscribe(ctx, "flaky", func(_ context.Context, ev events.Event) error {
		if calls.Add(1) < 3 {
			return errors.New("transient")
		}
		done <- ev
		return nil
	}, events.TypeContentReplicated)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	ev, err := b.Emit(ctx, events.TypeContentReplicated, events.ContentReplicated{Root: "bafy", Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got.ID != ev.ID || calls.Load() != 3 {
			t.Fatalf("got %s after %d calls", got.ID, calls.Load())
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatalf("not redelivered; %d calls", calls.Load())
	}
}

func TestHandlerGivesUpAfterMaxDeliver(t *testing.T) {
	ctx := ctxT(t)
	b, err := events.Open(ctx, events.Config{
		StoreDir: t.TempDir(), MaxDeliver: 3,
		RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var poison atomic.Int32
	ok := make(chan events.Event, 1)
	sub, err := b.Subscribe(ctx, "bounded", func(_ context.Context, ev events.Event) error {
		var p events.CachePurged
		_ = ev.Decode(&p)
		if p.Site == "poison" {
			poison.Add(1)
			return errors.New("always fails")
		}
		ok <- ev
		return nil
	}, events.TypeCachePurged)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if _, err := b.Emit(ctx, events.TypeCachePurged, events.CachePurged{Site: "poison"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Emit(ctx, events.TypeCachePurged, events.CachePurged{Site: "good"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ok:
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("good event not delivered")
	}
	// Wait until the consumer holds nothing unacknowledged: the poison event
	// has then been given up on, and must have been tried MaxDeliver times.
	cons, err := b.JetStream().Consumer(ctx, events.StreamName, "bounded")
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the consumer to hold nothing pending", func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return nil
		}
		return fmt.Errorf("consumer still pending: %+v", info)
	})
	if n := poison.Load(); n != 3 {
		t.Fatalf("poison handled %d times, want MaxDeliver=3", n)
	}
}

func TestUpdateConcurrentNoLostUpdate(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	kv, err := b.KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := events.Update(ctx, kv, "counter", func(old []byte) ([]byte, error) {
					var m map[string]int
					if old != nil {
						if err := json.Unmarshal(old, &m); err != nil {
							return nil, err
						}
					} else {
						m = map[string]int{}
					}
					m["total"]++
					m[fmt.Sprintf("w%d", w)] = i + 1
					return json.Marshal(m)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		t.Fatal(err)
	}
	if m["total"] != workers*each {
		t.Fatalf("total = %d, want %d (lost updates)", m["total"], workers*each)
	}
	for w := range workers {
		if m[fmt.Sprintf("w%d", w)] != each {
			t.Fatalf("worker %d = %d", w, m[fmt.Sprintf("w%d", w)])
		}
	}
}

func TestUpdateNoChangeAndAbort(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	kv, err := b.KV(events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := events.Update(ctx, kv, "k", func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("old = %q, want nil", old)
		}
		return []byte("v1"), nil
	})
	if err != nil || rev == 0 {
		t.Fatalf("create: %d %v", rev, err)
	}
	rev2, err := events.Update(ctx, kv, "k", func([]byte) ([]byte, error) { return nil, events.ErrNoChange })
	if err != nil || rev2 != rev {
		t.Fatalf("no change: %d %v, want %d", rev2, err, rev)
	}
	boom := errors.New("boom")
	if _, err := events.Update(ctx, kv, "k", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("abort: %v", err)
	}
	if _, err := b.KV("accounts-nope"); !errors.Is(err, events.ErrUnknownBucket) {
		t.Fatalf("unknown bucket: %v", err)
	}
}

func TestInvalidEvents(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := ctxT(t)
	cases := []events.Event{
		{ID: "", Type: events.TypeNodeLost},
		{ID: "x", Type: ""},
		{ID: "x", Type: "verity.>"},
		{ID: "x", Type: "a..b"},
		{ID: "x", Type: "Site.Deployed"},
		{ID: "x", Type: events.TypeNodeLost, Data: json.RawMessage("{not json")},
	}
	for _, ev := range cases {
		if err := b.Publish(ctx, ev); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("Publish(%+v) = %v, want ErrInvalidEvent", ev, err)
		}
	}
	if _, err := b.Subscribe(ctx, "bad.name", func(context.Context, events.Event) error { return nil }); err == nil {
		t.Error("durable with a dot accepted")
	}
}

func TestListenAndExternalURL(t *testing.T) {
	ctx := ctxT(t)
	srv, err := events.Open(ctx, events.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "srv", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := srv.ClientURL()
	if url == "" {
		t.Fatal("no client URL")
	}
	cli, err := events.Open(ctx, events.Config{URL: url, Name: "cli", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ch, _ := collect(t, srv, "from-cli", events.TypeNodeLost)
	ev, err := cli.Emit(ctx, events.TypeNodeLost, events.NodeLost{Node: "n1", Reason: "heartbeat timeout"})
	if err != nil {
		t.Fatal(err)
	}
	if got := next(t, ch); got.ID != ev.ID || got.Source != "cli" {
		t.Fatalf("got %+v", got)
	}
}

// A backlog a slow handler works through longer than AckWait: each event
// is handled once. Before, the consumer pulled up to 500 events at a
// time, their AckWait running from that pull, so those still waiting in
// the client's buffer after AckWait were delivered again behind it, and
// handled twice (and counted against MaxDeliver, as if they had failed).
func TestSlowHandlerBacklogHandledOnce(t *testing.T) {
	b, err := events.Open(ctxT(t), events.Config{
		StoreDir: t.TempDir(), Name: "test", Logger: testLogger(t),
		AckWait: testutil.Scale(400 * time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	const n = 40 // 40 × 25 ms: 2.5 AckWaits
	for i := range n {
		ev, err := events.NewWithID(fmt.Sprintf("slow-%d", i), events.TypeCachePurged, "gw", events.CachePurged{Site: "s", Gateway: "gw"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctxT(t), ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	sub, err := b.Subscribe(ctxT(t), "slow", func(_ context.Context, ev events.Event) error {
		time.Sleep(testutil.Scale(25 * time.Millisecond))
		mu.Lock()
		defer mu.Unlock()
		seen[ev.ID]++
		if len(seen) == n {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return nil
	}, events.TypeCachePurged)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	select {
	case <-done:
	case <-time.After(testutil.Scale(20 * time.Second)):
		t.Fatal("the backlog was not handled")
	}
	// Redeliveries would come behind the backlog: give them an AckWait.
	time.Sleep(testutil.Scale(600 * time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s handled %d times", id, k)
		}
	}
}
