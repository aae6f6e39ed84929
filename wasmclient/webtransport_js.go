//go:build js

package wasmclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"
)

// ErrNoWebTransport: the browser has no WebTransport.
var ErrNoWebTransport = errors.New("wasmclient: WebTransport is not available")

// WebTransportDialer opens bidirectional streams on one WebTransport session
// per node, created on first use and reused; a session that closed or failed
// is replaced on the next dial. Use it with FramedTransport.
type WebTransportDialer struct {
	// ConnectTimeout bounds establishing a session (default 5s).
	ConnectTimeout time.Duration

	mu       sync.Mutex
	sessions map[string]*wtSession
}

var (
	_ StreamDialer  = (*WebTransportDialer)(nil)
	_ nodeForgetter = (*WebTransportDialer)(nil)
	_ warmer        = (*WebTransportDialer)(nil)
)

type wtSession struct {
	ready chan struct{} // closed when wt is ready or err is set
	wt    js.Value
	err   error
	dead  atomic.Bool

	mu      sync.Mutex
	spare   js.Value // a stream opened ahead (a Promise), or undefined
	spareAt time.Time
	lastUse time.Time   // the last request's dial, or the session's start
	renew   *time.Timer // replaces the spare when it gets too old
}

// spareMaxAge bounds how long a stream opened ahead waits for its request:
// well within a node's wait for a request head (10 s by default). An older
// one is ended (FIN, nothing sent) and not used.
const spareMaxAge = 2 * time.Second

// spareKeep is how long after a session's start or its last request the
// stream opened ahead is renewed as it gets too old, so that a request
// after a pause does not wait for the browser to make its stream
// (docs/benchmarks.md, "The first verified byte of 1 MiB"). A worker idle
// longer is usually stopped by the browser anyway.
const spareKeep = 30 * time.Second

// jsEndStream ends a bidirectional stream opened ahead and never used.
var jsEndStream = js.FuncOf(func(_ js.Value, args []js.Value) any {
	bs := arg(args, 0)
	ignoreRejection(bs.Get("writable").Call("close"))
	ignoreRejection(bs.Get("readable").Call("cancel"))
	return nil
})

// jsKeepStream, bound to a Promise of a stream, keeps the stream as the
// Promise's verityStream once the browser made it: a request taking that
// spare uses it at once, with no wait for the Promise.
var jsKeepStream = js.FuncOf(func(this js.Value, args []js.Value) any {
	this.Set("verityStream", arg(args, 0))
	return nil
})

// stream returns a Promise of a new bidirectional stream, the one opened
// ahead when it is fresh, and opens the next one ahead, so a request does
// not wait for the browser to create its stream. Streams are handed out
// in the order they were opened, so the only one never written to is the
// newest. (createBidirectionalStream rejects, never throws.)
func (s *wtSession) stream() js.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUse = time.Now()
	p := s.spare
	if !p.IsUndefined() && time.Since(s.spareAt) > spareMaxAge {
		p.Call("then", jsEndStream, jsNoop)
		p = js.Undefined()
	}
	if p.IsUndefined() {
		p = s.wt.Call("createBidirectionalStream")
	}
	s.openSpare()
	return p
}

// openSpare opens the next stream ahead; a timer renews it before it gets
// too old. s.mu is held.
func (s *wtSession) openSpare() {
	p := s.wt.Call("createBidirectionalStream")
	p.Call("then", jsKeepStream.Call("bind", p), jsNoop)
	s.spare, s.spareAt = p, time.Now()
	if s.renew == nil {
		s.renew = time.AfterFunc(spareMaxAge, s.renewSpare)
	} else {
		s.renew.Reset(spareMaxAge)
	}
}

// renewSpare replaces the spare once it is too old, while the session is
// alive and was started or used within spareKeep.
func (s *wtSession) renewSpare() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead.Load() || time.Since(s.lastUse) > spareKeep {
		return
	}
	if age := time.Since(s.spareAt); age < spareMaxAge {
		s.renew.Reset(spareMaxAge - age)
		return
	}
	s.spare.Call("then", jsEndStream, jsNoop)
	s.openSpare()
}

// DialStream implements StreamDialer.
func (d *WebTransportDialer) DialStream(ctx context.Context, node Node) (Stream, error) {
	if node.WebTransport == "" || js.Global().Get("WebTransport").Type() != js.TypeFunction {
		// Not this node's or this browser's transport: let the next
		// transport (WebRTC) try the node.
		return nil, ErrNoAddress
	}
	s, err := d.session(ctx, node)
	if err != nil {
		return nil, err
	}
	p := s.stream()
	bs := p.Get("verityStream")
	if bs.IsUndefined() {
		var err error
		if bs, err = await(ctx, p); err != nil {
			d.forget(node.ID, s)
			return nil, err
		}
	}
	rd, err := newStreamReader(bs.Get("readable"), nil)
	if err != nil {
		return nil, err
	}
	return &wtStream{writer: bs.Get("writable").Call("getWriter"), reader: rd}, nil
}

// Warm implements warmer: it establishes node's session, as the first
// DialStream would.
func (d *WebTransportDialer) Warm(ctx context.Context, node Node) error {
	if node.WebTransport == "" || js.Global().Get("WebTransport").Type() != js.TypeFunction {
		return ErrNoAddress
	}
	_, err := d.session(ctx, node)
	return err
}

func (d *WebTransportDialer) session(ctx context.Context, node Node) (*wtSession, error) {
	d.mu.Lock()
	if d.sessions == nil {
		d.sessions = make(map[string]*wtSession)
	}
	s := d.sessions[node.ID]
	if s == nil || s.dead.Load() {
		s = &wtSession{ready: make(chan struct{})}
		d.sessions[node.ID] = s
		go d.connect(s, node)
	}
	d.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if s.err != nil {
		d.forget(node.ID, s)
		return nil, s.err
	}
	return s, nil
}

// connect establishes s; it is not bound to any one request.
func (d *WebTransportDialer) connect(s *wtSession, node Node) {
	defer close(s.ready)
	ctor := js.Global().Get("WebTransport")
	if ctor.Type() != js.TypeFunction {
		s.err = ErrNoWebTransport
		return
	}
	opts := map[string]any{}
	if hs := node.CertHashBytes(); len(hs) > 0 {
		list := make([]any, len(hs))
		for i, h := range hs {
			list[i] = map[string]any{"algorithm": "sha-256", "value": bytesToJS(h)}
		}
		opts["serverCertificateHashes"] = list
	}
	wt, err := jsTry(func() js.Value { return ctor.New(node.WebTransport, opts) })
	if err != nil {
		s.err = err
		return
	}
	// Watch the session's end so the next dial reconnects.
	closed := wt.Get("closed")
	go func() {
		_, _ = await(context.Background(), closed)
		s.dead.Store(true)
	}()
	timeout := d.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := WithTimeout(context.Background(), timeout)
	defer cancel()
	ready := wt.Get("ready")
	if _, err := await(ctx, ready); err != nil {
		ignoreRejection(ready)
		closeWT(wt)
		s.err = err
		return
	}
	s.wt = wt
	// The first request's stream, opened ahead.
	s.mu.Lock()
	s.lastUse = time.Now()
	s.openSpare()
	s.mu.Unlock()
}

func closeWT(wt js.Value) {
	_, _ = jsTry(func() js.Value { return wt.Call("close") })
}

func (d *WebTransportDialer) forget(id string, s *wtSession) {
	s.dead.Store(true)
	d.mu.Lock()
	if d.sessions[id] == s {
		delete(d.sessions, id)
	}
	d.mu.Unlock()
	if s.wt.Truthy() {
		closeWT(s.wt)
	}
}

// forgetGrace is how long a forgotten session stays open for the streams
// still using it.
const forgetGrace = 30 * time.Second

// ForgetNode retires the node's session: the next dial reconnects. Streams
// still running on it may finish; it is closed after forgetGrace.
func (d *WebTransportDialer) ForgetNode(id string) {
	d.mu.Lock()
	s := d.sessions[id]
	if s != nil {
		delete(d.sessions, id)
	}
	d.mu.Unlock()
	if s == nil {
		return
	}
	s.dead.Store(true)
	time.AfterFunc(forgetGrace, func() {
		<-s.ready
		if s.wt.Truthy() {
			closeWT(s.wt)
		}
	})
}

// wtStream is one WebTransport bidirectional stream.
type wtStream struct {
	writer js.Value
	reader *streamReader
	once   sync.Once
}

var (
	_ closeWriter = (*wtStream)(nil)
	_ closeReader = (*wtStream)(nil)
)

// Write queues p on the stream and returns without waiting for it to
// leave: what a request writes is its head and its receipts, a few hundred
// bytes each, and a wait for each would cost the worker's thread a promise
// round trip per write. A stream that failed refuses the next Write (its
// writer's desiredSize is then null), and its reads fail.
func (s *wtStream) Write(p []byte) (int, error) {
	w, err := jsTry(func() js.Value {
		if s.writer.Get("desiredSize").Type() != js.TypeNumber {
			return js.Null()
		}
		return s.writer.Call("write", bytesToJS(p))
	})
	if err != nil {
		return 0, err
	}
	if w.IsNull() {
		return 0, errStreamWriteFailed
	}
	w.Call("catch", jsNoop) // the failure shows in the next Write and in reads
	return len(p), nil
}

// errStreamWriteFailed: the stream's sending side errored.
var errStreamWriteFailed = errors.New("wasmclient: stream write failed")

// CloseWrite sends FIN after the queued writes.
func (s *wtStream) CloseWrite() error {
	p, err := jsTry(func() js.Value { return s.writer.Call("close") })
	if err == nil {
		ignoreRejection(p)
	}
	return err
}

func (s *wtStream) Read(p []byte) (int, error) { return s.reader.Read(p) }

// CloseRead stops reading (STOP_SENDING) and leaves the sending side to
// finish what was queued.
func (s *wtStream) CloseRead() error { return s.reader.Close() }

// Close aborts both directions; a pending Read returns.
func (s *wtStream) Close() error {
	s.once.Do(func() {
		if p, err := jsTry(func() js.Value { return s.writer.Call("abort") }); err == nil {
			ignoreRejection(p)
		}
		_ = s.reader.Close()
	})
	return nil
}
