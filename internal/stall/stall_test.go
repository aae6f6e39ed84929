package stall_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/stall"
	"github.com/verity-cdn/verity/internal/testutil"
)

var errSlow = errors.New("too slow")

// A source that sends less than the minimum in a window ends the
// context with the cause; one that keeps up is left alone until Stop.
func TestWatch(t *testing.T) {
	const window = 50 * time.Millisecond
	t.Run("trickle", func(t *testing.T) {
		ctx, g := stall.Watch(t.Context(), window, 1024, errSlow)
		defer g.Stop()
		pr, pw := io.Pipe()
		go func() {
			for ctx.Err() == nil {
				pw.Write([]byte{1}) // a byte per 10 ms: 5 per window
				time.Sleep(10 * time.Millisecond)
			}
			pw.Close()
		}()
		go io.Copy(io.Discard, g.Reader(pr))
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a trickling source was not abandoned")
		}
		if cause := context.Cause(ctx); cause != errSlow {
			t.Fatalf("cause %v, want %v", cause, errSlow)
		}
		if err := g.Err(context.Canceled); err != errSlow {
			t.Fatalf("Err %v, want %v", err, errSlow)
		}
	})
	t.Run("nothing at all", func(t *testing.T) {
		ctx, g := stall.Watch(t.Context(), window, 1, errSlow)
		defer g.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a silent source was not abandoned")
		}
	})
	t.Run("steady", func(t *testing.T) {
		// A window long enough that a busy machine's scheduling does not
		// starve the reader for a whole one.
		long := testutil.Scale(300 * time.Millisecond)
		ctx, g := stall.Watch(t.Context(), long, 1024, errSlow)
		r := g.Reader(zeros{})
		buf := make([]byte, 4096)
		// Five windows of reading as fast as the reader takes.
		for end := time.Now().Add(5 * long); time.Now().Before(end); {
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("a steady source abandoned: %v", context.Cause(ctx))
			}
		}
		g.Stop()
		if err := g.Err(io.EOF); err != io.EOF {
			t.Fatalf("Err %v of a guard that did not fire, want EOF", err)
		}
		if ctx.Err() == nil || context.Cause(ctx) == errSlow {
			t.Fatalf("after Stop: %v, cause %v", ctx.Err(), context.Cause(ctx))
		}
	})
}

// A source that has sent everything owes nothing more: the reader's own
// work after its end (a store syncing what it read) does not count.
func TestWatchEndsAtEOF(t *testing.T) {
	ctx, g := stall.Watch(t.Context(), 20*time.Millisecond, 1024, errSlow)
	defer g.Stop()
	if _, err := io.ReadAll(g.Reader(strings.NewReader("small"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // five windows of the reader's own work
	if ctx.Err() != nil {
		t.Fatalf("abandoned after its end: %v", context.Cause(ctx))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
