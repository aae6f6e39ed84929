//go:build !js

package wasmclient

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// gatedLoader answers session documents with root roots[n] on its n-th
// load, each load waiting for a value on gate.
type gatedLoader struct {
	gate    chan struct{}
	waiting atomic.Int32 // loads started
	loads   atomic.Int32 // loads answered
	roots   []string
}

func (l *gatedLoader) LoadSession(ctx context.Context) (*Session, error) {
	l.waiting.Add(1)
	select {
	case <-l.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n := int(l.loads.Add(1)) - 1
	return ParseSession([]byte(`{"version":1,"site":"s","ttl":30,"root":"` + l.roots[min(n, len(l.roots)-1)] + `"}`))
}

// An expired session is served while the next one loads in the background,
// within sessionMaxStale; past that a request waits for the load.
func TestSessionCacheStaleWhileReloading(t *testing.T) {
	const rootA = "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"
	const rootB = "bafkr4ib247mal5tytjsaflfxblkas2ufuvv7nacov4s4asj2y2lvjdjqwu"
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	l := &gatedLoader{gate: make(chan struct{}, 4), roots: []string{rootA, rootB, rootA}}
	var wg sync.WaitGroup
	defer wg.Wait()
	c := &sessionCache{loader: l, now: clock, defaultTTL: time.Minute,
		bg: func(fn func(context.Context)) {
			wg.Add(1)
			go func() { defer wg.Done(); fn(context.Background()) }()
		}}
	ctx := context.Background()

	l.gate <- struct{}{}
	s, err := c.get(ctx)
	if err != nil || s.Root != rootA {
		t.Fatalf("first get: %v %v", s, err)
	}

	// Expired: the stale session answers at once, the reload waits on
	// the gate in the background.
	advance(31 * time.Second)
	for range 3 {
		s, err = c.get(ctx)
		if err != nil || s.Root != rootA {
			t.Fatalf("stale get: %v %v", s, err)
		}
	}
	l.gate <- struct{}{}
	testutil.Eventually(t, 5*time.Second, "the background reload to install the new root", func() bool {
		s, err := c.get(ctx)
		return err == nil && s.Root == rootB
	})
	if n := l.loads.Load(); n != 2 {
		t.Fatalf("%d loads, want 2 (one background reload for the three stale gets)", n)
	}

	// Past the stale bound the request waits for the load.
	advance(30*time.Second + sessionMaxStale + time.Second)
	done := make(chan *Session, 1)
	go func() { s, _ := c.get(ctx); done <- s }()
	testutil.Eventually(t, 5*time.Second, "the get past the stale bound to load", func() bool { return l.waiting.Load() == 3 })
	if len(done) != 0 {
		t.Fatal("get past the stale bound answered while its load waits")
	}
	l.gate <- struct{}{}
	if s := <-done; s == nil || s.Root != rootA {
		t.Fatalf("get past the stale bound: %v", s)
	}
}
