//go:build js

package wasmclient

import (
	"syscall/js"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// fakeWT is a WebTransport session whose createBidirectionalStream makes
// numbered streams (n) that remember whether they were ended unused.
func fakeWT(t *testing.T) js.Value {
	t.Helper()
	mk := js.Global().Get("Function").New(`
		const made = [];
		return { made, createBidirectionalStream() {
			const s = { n: made.length, ended: false,
				writable: { close() { s.ended = true; return Promise.resolve(); } },
				readable: { cancel() { return Promise.resolve(); } } };
			made.push(s);
			return Promise.resolve(s);
		} };`)
	return mk.Invoke()
}

// TestWTSessionSpareStream: a session opens a stream ahead at its start;
// a request takes that stream as it is, without a wait, and the next one
// is opened ahead; a spare left unused is ended and replaced before it
// is spareMaxAge old.
func TestWTSessionSpareStream(t *testing.T) {
	wt := fakeWT(t)
	made := wt.Get("made")
	s := &wtSession{wt: wt}
	t.Cleanup(func() { s.dead.Store(true) })
	s.mu.Lock()
	s.lastUse = time.Now()
	s.openSpare()
	s.mu.Unlock()
	testutil.Eventually(t, 10*time.Second, "the spare's stream kept on its Promise", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.spare.Get("verityStream").IsUndefined()
	})

	p := s.stream()
	bs := p.Get("verityStream")
	if bs.IsUndefined() || bs.Get("n").Int() != 0 {
		t.Fatalf("the request did not get the stream opened ahead at once: %v", bs)
	}
	if got := made.Length(); got != 2 {
		t.Fatalf("%d streams made, want the taken one and the next spare", got)
	}

	// Unused, the spare is ended and replaced: the request after a pause
	// finds a fresh one, made by the browser already.
	testutil.Eventually(t, 10*spareMaxAge, "the unused spare ended and replaced", func() bool {
		return made.Length() >= 3 && made.Index(1).Get("ended").Bool()
	})
	testutil.Eventually(t, 10*time.Second, "the new spare's stream kept on its Promise", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.spare.Get("verityStream").IsUndefined()
	})
	p = s.stream()
	bs = p.Get("verityStream")
	if bs.IsUndefined() || bs.Get("ended").Bool() || bs.Get("n").Int() < 2 {
		t.Fatalf("after the pause the request got %v, want the fresh spare", bs)
	}
	if made.Index(0).Get("ended").Bool() {
		t.Error("the stream a request took was ended")
	}
}
