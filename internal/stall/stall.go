// Package stall abandons a transfer whose source sends too little. A
// source that trickles, or hangs with its connection open, would
// otherwise hold whoever reads it for as long as its context lasts,
// often far longer than any honest source takes, and keep the reader
// from the next source.
package stall

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Guard counts what is read through its Readers and ends its context
// once a window passes in which fewer than the minimum bytes were read.
type Guard struct {
	n       atomic.Int64
	min     int64
	window  time.Duration
	cancel  context.CancelCauseFunc
	cause   error
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	fired   atomic.Bool
}

// Watch returns a context derived from ctx that is cancelled with cause
// once a window of d passes in which fewer than min bytes were read
// through the Guard's Readers (the wait for a response's head counts:
// nothing is read then), until a Reader reaches its source's end. Stop
// ends the watch and the context.
func Watch(ctx context.Context, d time.Duration, min int64, cause error) (context.Context, *Guard) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &Guard{min: min, window: d, cancel: cancel, cause: cause}
	g.t = time.AfterFunc(d, g.check)
	return ctx, g
}

func (g *Guard) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if g.n.Swap(0) < g.min {
		g.fired.Store(true)
		g.cancel(g.cause)
		return
	}
	g.t = time.AfterFunc(g.window, g.check)
}

// Err is err, or the Guard's cause once it ended the context: what a
// transfer cut off by it reports (a cancelled read's own error says
// nothing of why).
func (g *Guard) Err(err error) error {
	if g.fired.Load() {
		return g.cause
	}
	return err
}

// Reader is r, counted by the Guard.
func (g *Guard) Reader(r io.Reader) io.Reader { return &reader{r: r, g: g} }

// Stop ends the watch and cancels its context.
func (g *Guard) Stop() {
	g.finish()
	g.cancel(nil)
}

// finish ends the watch, leaving the context as it is.
func (g *Guard) finish() {
	g.mu.Lock()
	g.stopped = true
	g.t.Stop()
	g.mu.Unlock()
}

type reader struct {
	r io.Reader
	g *Guard
}

// Read reads from the source. Once the source has sent everything (EOF)
// the watch ends: the source owes nothing more, and what the reader does
// with the bytes after (a store syncing them to disk) is not the
// source's to answer for.
func (r *reader) Read(p []byte) (int, error) {
	k, err := r.r.Read(p)
	r.g.n.Add(int64(k))
	if err == io.EOF {
		r.g.finish()
	}
	return k, err
}
