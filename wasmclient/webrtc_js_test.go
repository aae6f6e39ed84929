//go:build js

package wasmclient

import (
	"context"
	"errors"
	"io"
	"syscall/js"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// fakeBridgeJS plays the page's side of one bridged stream: it
// acknowledges with credit, then sends total bytes in 16 KiB messages,
// honouring the credit (honest) or sending 64 KiB past it at once, and
// records the credit the worker grants in globalThis.__verityGrants.
const fakeBridgeJS = `(total, honest) => (ev) => {
	const d = ev.data, sp = ev.ports[0];
	let credit = d.credit, sent = 0;
	globalThis.__verityGrants = [];
	const chunk = () => new Uint8Array(Math.min(16384, total - sent)).fill(sent & 255).buffer;
	const pump = () => {
		while (sent < total && (!honest || credit >= Math.min(16384, total - sent))) {
			const b = chunk();
			credit -= b.byteLength; sent += b.byteLength;
			sp.postMessage({t: 'data', b}, [b]);
			if (!honest && credit < -65536) return;
		}
		if (sent >= total) sp.postMessage({t: 'end'});
	};
	sp.onmessage = (m) => {
		if (m.data.t === 'credit') { globalThis.__verityGrants.push(m.data.n); credit += m.data.n; pump(); }
	};
	sp.postMessage({t: 'ack', credit: true});
	pump();
}`

func openFakeBridge(t *testing.T, total int, honest bool) *rtcStream {
	t.Helper()
	mk := js.Global().Call("eval", fakeBridgeJS)
	ch := js.Global().Get("MessageChannel").New()
	ch.Get("port2").Set("onmessage", mk.Invoke(total, honest))
	t.Cleanup(func() { ch.Get("port2").Call("close") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := openBridgeStream(ctx, ch.Get("port1"), Node{ID: "ntest", WebRTC: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A page that honours the credit streams a response several windows long:
// the worker grants more as it reads, and every byte arrives.
func TestBridgeCreditGranted(t *testing.T) {
	const total = 3*bridgeWindow + 5000
	s := openFakeBridge(t, total, true)
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != total {
		t.Fatalf("read %d bytes, %v; want %d", n, err, total)
	}
	grants := js.Global().Get("__verityGrants")
	var granted int64 = bridgeWindow
	for i := 0; i < grants.Length(); i++ {
		granted += int64(grants.Index(i).Int())
	}
	if grants.Length() == 0 || granted < total || granted > total+bridgeWindow {
		t.Fatalf("%d grants, %d bytes granted in all, for %d bytes read", grants.Length(), granted, total)
	}
}

// A page that posts past its credit fails the stream with ErrBridgeCredit,
// after no more than the credit's bytes.
func TestBridgeCreditOverrun(t *testing.T) {
	s := openFakeBridge(t, 4*bridgeWindow, false)
	// Read nothing until the page's burst is in: a read grants credit,
	// and the worker holds the page to the credit granted in all.
	testutil.Eventually(t, 10*time.Second, "the page's burst", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err != nil || s.received > bridgeWindow
	})
	n, err := io.Copy(io.Discard, s)
	if !errors.Is(err, ErrBridgeCredit) || n > bridgeWindow {
		t.Fatalf("read %d bytes, then %v; want at most %d, then ErrBridgeCredit", n, err, bridgeWindow)
	}
}

// The page's two ways of giving up a stream that are not the node's doing
// map to ErrBridgeGone (the page went) and ErrBridgeOverrun (it held too
// much for a slow reader); any other error is the stream's.
func TestBridgeErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		flag string
		want error
	}{{"gone", ErrBridgeGone}, {"held", ErrBridgeOverrun}, {"other", nil}} {
		mk := js.Global().Call("eval", `(flag) => (ev) => {
			const sp = ev.ports[0];
			sp.postMessage({t: 'ack', credit: true});
			const m = {t: 'error', msg: 'given up'};
			m[flag] = true;
			sp.postMessage(m);
		}`)
		ch := js.Global().Get("MessageChannel").New()
		ch.Get("port2").Set("onmessage", mk.Invoke(tc.flag))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := openBridgeStream(ctx, ch.Get("port1"), Node{ID: "ntest", WebRTC: true})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, s)
		s.Close()
		ch.Get("port2").Call("close")
		switch {
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.flag, err, tc.want)
		case tc.want == nil && (err == nil || errors.Is(err, ErrBridgeGone) || errors.Is(err, ErrBridgeOverrun)):
			t.Errorf("%s: %v, want a stream error", tc.flag, err)
		}
	}
}

// A page that does not honour credit (an older loader) posts whatever the
// node sends: the worker queues at most bridgeHoldMax unread bytes, then
// fails the stream with ErrBridgeOverrun instead of growing its memory.
func TestBridgeWithoutCreditBounded(t *testing.T) {
	mk := js.Global().Call("eval", `(total) => (ev) => {
		const sp = ev.ports[0];
		sp.postMessage({t: 'ack'});
		for (let sent = 0; sent < total; sent += 65536) {
			const b = new Uint8Array(65536).buffer;
			sp.postMessage({t: 'data', b}, [b]);
		}
		sp.postMessage({t: 'end'});
	}`)
	ch := js.Global().Get("MessageChannel").New()
	ch.Get("port2").Set("onmessage", mk.Invoke(bridgeHoldMax+4*65536))
	t.Cleanup(func() { ch.Get("port2").Call("close") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := openBridgeStream(ctx, ch.Get("port1"), Node{ID: "ntest", WebRTC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Read nothing until the page's burst is in.
	testutil.Eventually(t, 10*time.Second, "the page's burst to end the stream", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.err != nil
	})
	n, err := io.Copy(io.Discard, s)
	if !errors.Is(err, ErrBridgeOverrun) || n > bridgeHoldMax {
		t.Fatalf("read %d bytes, then %v; want at most %d, then ErrBridgeOverrun", n, err, bridgeHoldMax)
	}
}
