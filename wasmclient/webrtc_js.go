//go:build js

package wasmclient

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall/js"
	"time"

	"github.com/verity-cdn/verity/internal/errfmt"
)

// WebRTC in the worker: RTCPeerConnection exists only in pages, so the page
// that loaded verity.js holds the peer connections and relays each data
// channel to the worker over a MessageChannel of its own (the bridge,
// serviceworker/verity.js). Every byte is still verified here.
//
// Stream port messages, page → worker: {t:"ack", credit:true} at once,
// {t:"data", b:ArrayBuffer} per data-channel message, {t:"reset",
// code:string} for a control frame, {t:"end"} when the channel closed,
// {t:"error", msg} when no channel could be opened, the page went away
// (gone:true) or held too much for a worker reading slowly (held:true).
// Worker → page: {t:"data", b:ArrayBuffer}, {t:"credit", n:bytes},
// {t:"close"}.
//
// Credit (docs/protocol.md §3, "The page → worker bridge"): the worker grants the page bridgeWindow
// bytes in the stream request and more, {t:"credit"}, as Read consumes
// them; the page posts data only within its credit and holds the rest, up
// to a bound past which it fails the stream. So neither the worker's queue
// nor the page's grows without bound for a worker that reads slowly.

var (
	// ErrNoBridge: no controlled page offers a WebRTC bridge.
	ErrNoBridge = errors.New("wasmclient: no page bridges WebRTC")
	// ErrChannelReset: the node ended a data channel with a reset control
	// frame (docs/protocol.md §3). It is an ErrStreamReset.
	ErrChannelReset = errfmt.Errorf("%w (data channel reset control frame)", ErrStreamReset)
)

// WebRTCPath is the gateway's signaling endpoint, followed by the node id.
const WebRTCPath = "/.verity/v1/webrtc/"

// WebRTCLanes is how many segments of one large body the worker fetches
// from one WebRTC node at once: the page spreads a node's concurrent
// streams over as many peer connections (RTC_PCS_MAX in verity.js), each
// with its own SCTP association and congestion window, so a packet lost on
// one does not slow the others (docs/benchmarks.md, "WebRTC: through the
// worker and raw").
const WebRTCLanes = 4

// bridgeWindow is the credit a stream starts with and keeps topping up: at
// most this many bytes are posted to the worker and not yet read.
const bridgeWindow = 1 << 20

// bridgeHoldMax bounds the bytes a page that does not honour credit (an
// older loader) may have posted and the worker not yet read: what a
// crediting page holds at most (RTC_HOLD_MAX in verity.js).
const bridgeHoldMax = 8 << 20

// ErrBridgeCredit: a page posted more than the credit the worker granted.
var ErrBridgeCredit = errors.New("wasmclient: webrtc bridge exceeded its credit")

// WebRTCDialer opens data channels to nodes that offer WebRTC, through a
// bridging page. Use it with FramedTransport.
type WebRTCDialer struct {
	// BridgeTimeout bounds finding a page that bridges (default 2s).
	BridgeTimeout time.Duration
}

var _ StreamDialer = (*WebRTCDialer)(nil)

// DialStream implements StreamDialer.
func (d *WebRTCDialer) DialStream(ctx context.Context, node Node) (Stream, error) {
	if !node.WebRTC {
		return nil, ErrNoAddress
	}
	timeout := d.BridgeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	requested := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, port, ok := anyBridge()
		if ok {
			s, err := openBridgeStream(ctx, port, node)
			if err == nil {
				return s, nil
			}
			// The page is gone (or wedged): forget it and try another.
			forgetBridge(id)
			continue
		}
		if time.Now().After(deadline) {
			return nil, ErrNoBridge
		}
		if !requested {
			requested = true
			requestBridges()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// anyBridge returns the most recently connected bridge port.
func anyBridge() (id string, port js.Value, ok bool) {
	m := js.Global().Get("__verityBridges")
	if m.Type() != js.TypeObject || m.Get("size").Int() == 0 {
		return "", js.Undefined(), false
	}
	entries := js.Global().Get("Array").Call("from", m.Call("entries"))
	last := entries.Index(entries.Length() - 1)
	return last.Index(0).String(), last.Index(1), true
}

func forgetBridge(id string) {
	if m := js.Global().Get("__verityBridges"); m.Type() == js.TypeObject {
		m.Call("delete", id)
	}
}

// requestBridges asks every controlled page for a bridge.
func requestBridges() {
	req := js.Global().Get("__verityRequestBridge")
	clients := js.Global().Get("clients")
	if req.Type() != js.TypeFunction || clients.Type() != js.TypeObject {
		return
	}
	go func() {
		ctx, cancel := WithTimeout(context.Background(), time.Second)
		defer cancel()
		list, err := await(ctx, clients.Call("matchAll", map[string]any{"type": "window"}))
		if err != nil {
			return
		}
		for i := 0; i < list.Length(); i++ {
			_, _ = jsTry(func() js.Value { return req.Invoke(list.Index(i)) })
		}
	}()
}

// ackTimeout is how long a page has to acknowledge a new stream.
const ackTimeout = time.Second

func openBridgeStream(ctx context.Context, bridge js.Value, node Node) (*rtcStream, error) {
	ch := js.Global().Get("MessageChannel").New()
	s := &rtcStream{port: ch.Get("port1"), wake: make(chan struct{}, 1), acked: make(chan struct{})}
	s.onMsg = js.FuncOf(s.onMessage)
	s.port.Set("onmessage", s.onMsg)
	msg := map[string]any{"type": "verity-rtc-stream", "node": node.ID, "url": WebRTCPath + node.ID, "credit": bridgeWindow}
	if _, err := jsTry(func() js.Value {
		return bridge.Call("postMessage", msg, []any{ch.Get("port2")})
	}); err != nil {
		s.Close()
		return nil, err
	}
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case <-s.acked:
		return s, nil
	case <-t.C:
		s.Close()
		return nil, ErrNoBridge
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// rtcStream is one data channel, seen through the bridge.
type rtcStream struct {
	port  js.Value
	onMsg js.Func
	wake  chan struct{}
	acked chan struct{}

	mu      sync.Mutex
	queue   [][]byte
	err     error // io.EOF after "end", else the failure
	ack     bool
	closed  bool
	pending []byte

	// Credit, in bytes since the stream opened. Checked only when the
	// page says it honours credit (an older loader does not).
	credited bool  // the page's ack said credit:true
	granted  int64 // credit granted to the page
	received int64 // data bytes the page posted
	read     int64 // bytes Read returned
}

// onMessage runs on the JS event loop: it only queues.
func (s *rtcStream) onMessage(_ js.Value, args []js.Value) any {
	d := arg(args, 0).Get("data")
	if d.Type() != js.TypeObject {
		return nil
	}
	s.mu.Lock()
	switch d.Get("t").String() {
	case "ack":
		if !s.ack {
			s.ack = true
			s.credited = d.Get("credit").Truthy()
			s.granted = bridgeWindow
			close(s.acked)
		}
	case "data":
		b := jsUint8Array.New(d.Get("b"))
		p := make([]byte, b.Length())
		js.CopyBytesToGo(p, b)
		s.received += int64(len(p))
		if s.credited && s.received > s.granted {
			if s.err == nil || s.err == io.EOF {
				s.err = ErrBridgeCredit
			}
			s.queue = nil
			break
		}
		if !s.credited && s.received-s.read > bridgeHoldMax {
			// A page without credit posts as the node sends: the
			// worker holds at most what a crediting page would.
			if s.err == nil || s.err == io.EOF {
				s.err = ErrBridgeOverrun
			}
			s.queue = nil
			break
		}
		s.queue = append(s.queue, p)
	case "reset":
		if s.err == nil {
			s.err = ErrChannelReset
		}
	case "end":
		if s.err == nil {
			s.err = io.EOF
		}
	case "error":
		if s.err == nil {
			switch {
			case d.Get("gone").Truthy():
				s.err = ErrBridgeGone
			case d.Get("held").Truthy():
				s.err = ErrBridgeOverrun
			default:
				s.err = errors.New("wasmclient: webrtc: " + jsString(d.Get("msg")))
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *rtcStream) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 && len(s.queue) > 0 {
			s.pending, s.queue = s.queue[0], s.queue[1:]
		}
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			s.read += int64(n)
			grant := s.topUp()
			s.mu.Unlock()
			if grant > 0 {
				_, _ = jsTry(func() js.Value {
					return s.port.Call("postMessage", map[string]any{"t": "credit", "n": grant})
				})
			}
			return n, nil
		}
		err, closed := s.err, s.closed
		s.mu.Unlock()
		if closed {
			return 0, io.ErrClosedPipe
		}
		if err != nil {
			return 0, err
		}
		<-s.wake
	}
}

// topUp returns the credit to grant now: once a quarter of the window has
// been read, enough to let bridgeWindow bytes be unread again. s.mu held.
func (s *rtcStream) topUp() int64 {
	if s.closed || s.err != nil {
		return 0
	}
	grant := s.read + bridgeWindow - s.granted
	if grant < bridgeWindow/4 {
		return 0
	}
	s.granted += grant
	return grant
}

func (s *rtcStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, io.ErrClosedPipe
	}
	buf := bytesToJS(p).Get("buffer")
	if _, err := jsTry(func() js.Value {
		return s.port.Call("postMessage", map[string]any{"t": "data", "b": buf}, []any{buf})
	}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the data channel and the port; a pending Read returns.
func (s *rtcStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	_, _ = jsTry(func() js.Value { return s.port.Call("postMessage", map[string]any{"t": "close"}) })
	_, _ = jsTry(func() js.Value { return s.port.Call("close") })
	s.port.Set("onmessage", js.Null())
	s.onMsg.Release()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}
