//go:build js

package wasmclient

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestWorkerWarmUp: the warm-up request is served from the answer kept
// in the wasm through the JavaScript stream path (BYOB reads, a
// ReadableStream body), asks nothing of the network, and is verified: a
// changed byte of that answer fails it.
func TestWorkerWarmUp(t *testing.T) {
	n := installFakeNet(t)
	w := newTestWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WarmUp(ctx); err != nil {
		t.Fatalf("WarmUp: %v", err)
	}
	n.mu.Lock()
	fetched := append([]string(nil), n.fetches...)
	n.mu.Unlock()
	if len(fetched) != 0 {
		t.Errorf("the warm-up fetched %q", fetched)
	}
	if recs := w.Client().Stats().Requests(); len(recs) != 0 {
		t.Errorf("the warm-up is in the worker's stats: %+v", recs)
	}

	good := warmupStream
	t.Cleanup(func() { warmupStream = good })
	bad := bytes.Clone(good)
	bad[len(bad)-100] ^= 1 // in the last leaf's last group
	warmupStream = bad
	if err := w.WarmUp(ctx); err == nil {
		t.Error("WarmUp of a changed answer: no error")
	}
}
