package wasmclient

import (
	"context"
	"errors"
	"testing"
	"time"
)

// WithTimeout's context ends after its duration with DeadlineExceeded as
// its cause, as context.WithTimeout's does; cancelled first, its cause is
// Canceled and the timer changes nothing after.
func TestWithTimeout(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context did not end after its timeout")
	}
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cause after the timeout: %v, want DeadlineExceeded", err)
	}

	ctx, cancel = WithTimeout(context.Background(), 20*time.Millisecond)
	cancel()
	time.Sleep(40 * time.Millisecond)
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cause after cancel: %v, want Canceled", err)
	}

	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel = WithTimeout(parent, time.Hour)
	defer cancel()
	cancelParent()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cause after the parent's cancel: %v, want Canceled", err)
	}
}
