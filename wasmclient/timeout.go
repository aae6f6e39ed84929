package wasmclient

import (
	"context"
	"time"
)

// WithTimeout is context.WithTimeout for the worker: the context ends
// after d, its cause (context.Cause) context.DeadlineExceeded; its Err is
// context.Canceled. Built on WithCancelCause and a timer, not on
// context's timerCtx, whose String method alone links time's date
// formatting into the wasm (about 3 KB gzipped). Code that tells a
// timeout from a cancel reads the cause (await does).
func WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	t := time.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}
