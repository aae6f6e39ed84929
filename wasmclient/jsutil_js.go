//go:build js

package wasmclient

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall/js"

	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	jsPromise            = js.Global().Get("Promise")
	jsUint8Array         = js.Global().Get("Uint8Array")
	jsArrayBuffer        = js.Global().Get("ArrayBuffer")
	jsByteLengthStrategy = js.Global().Get("ByteLengthQueuingStrategy")
	jsObject             = js.Global().Get("Object")
	jsErrorCtor          = js.Global().Get("Error")
	jsJSON               = js.Global().Get("JSON")
	jsReadableStream     = js.Global().Get("ReadableStream")
	jsResponseCtor       = js.Global().Get("Response")
	jsHeaders            = js.Global().Get("Headers")

	// jsNoop swallows rejections of promises nobody waits for.
	jsNoop = js.FuncOf(func(js.Value, []js.Value) any { return nil })
)

// JSError is a JavaScript exception or rejection reason seen from Go.
type JSError struct {
	Name        string
	Message     string
	StreamReset bool // a WebTransport stream reset by the peer
}

// streamError marks a peer's stream reset as ErrStreamReset.
func streamError(err error) error {
	if je, ok := err.(*JSError); ok && je.StreamReset {
		return errfmt.Errorf("%w: %v", ErrStreamReset, je)
	}
	return err
}

func (e *JSError) Error() string {
	if e.Name == "" {
		return "js: " + e.Message
	}
	return "js: " + e.Name + ": " + e.Message
}

func toJSError(v js.Value) error {
	if v.Type() == js.TypeObject && v.Get("name").Type() == js.TypeString &&
		v.Get("name").String() == "WebTransportError" && v.Get("source").Type() == js.TypeString &&
		v.Get("source").String() == "stream" {
		return &JSError{Name: "WebTransportError", Message: jsStr(v.Get("message")), StreamReset: true}
	}
	if v.Type() == js.TypeObject {
		name, msg := v.Get("name"), v.Get("message")
		e := &JSError{}
		if name.Type() == js.TypeString {
			e.Name = name.String()
		}
		if msg.Type() == js.TypeString {
			e.Message = msg.String()
		}
		if e.Name != "" || e.Message != "" {
			return e
		}
	}
	return &JSError{Message: jsString(v)}
}

func jsString(v js.Value) string {
	defer func() { _ = recover() }()
	return js.Global().Call("String", v).String()
}

// jsTry runs fn and turns a thrown JavaScript exception into an error.
func jsTry(fn func() js.Value) (v js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if je, ok := r.(js.Error); ok {
				err = toJSError(je.Value)
				return
			}
			err = errfmt.Errorf("js: %v", r)
		}
	}()
	return fn(), nil
}

// await waits for p to settle or ctx to end. It must not be called from
// inside a js.FuncOf callback (it blocks); call it from a goroutine.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var onOK, onErr js.Func
	release := func() { onOK.Release(); onErr.Release() }
	onOK = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: arg(args, 0)}
		release()
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: toJSError(arg(args, 0))}
		release()
		return nil
	})
	if _, err := jsTry(func() js.Value { return p.Call("then", onOK, onErr) }); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return js.Undefined(), context.Cause(ctx) // DeadlineExceeded for WithTimeout's
	}
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// newPromise returns a Promise settled by fn, which runs in a goroutine so
// the calling callback never blocks.
func newPromise(fn func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			// A panic here would stop the whole worker: turn it into a
			// rejection, which the worker script answers from the network.
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(jsErrorCtor.New(errfmt.Sprint("verity: internal error: ", r)))
				}
			}()
			v, err := fn()
			if err != nil {
				reject.Invoke(jsErrorValue(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	p := jsPromise.New(executor) // the executor runs synchronously
	executor.Release()
	return p
}

func jsErrorValue(err error) js.Value { return jsErrorCtor.New(err.Error()) }

// ignoreRejection attaches a no-op rejection handler to p when it is a promise.
func ignoreRejection(p js.Value) {
	if p.Type() == js.TypeObject && p.Get("catch").Type() == js.TypeFunction {
		p.Call("catch", jsNoop)
	}
}

// bytesToJS copies b into a new Uint8Array.
func bytesToJS(b []byte) js.Value {
	u := jsUint8Array.New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}

// Reads from a byte stream (WebTransport streams, fetch bodies) go through a
// BYOB reader and wait for at least byobMin bytes (or the end of the
// stream): one read moves a batch of network chunks, so the Promise and the
// copy into Go are paid per batch, not per packet. One read is always kept
// in flight, so the stream keeps filling while Go verifies the previous
// batch: it starts once that batch is staged for Go (jsio_js.go), into the
// same buffer. The reads of a stream's first byobFirst
// bytes wait only for byobMinFirst: in a bao16 body the first 16 KiB chunk
// group of a file can be verified and shown long before 128 KiB arrived,
// and a new stream's first bytes come in the sender's first, small
// congestion windows.
//
// A stream starts with a byobFirstBufSize buffer, takes a byobMidBufSize
// one once that many bytes came, and a byobBufSize one once byobFirst
// came: most requests of a page are small files, whose whole answer fits
// the small one, while a long stream (a large file's segments) moves up to
// 1 MiB per read, so each of its Go wake-ups (a Promise settled, the
// scheduler's pass, the copy into Go) is paid per MiB when the stream is
// ahead of the worker. A stream holds one buffer at a time.
const (
	byobBufSize      = 1 << 20
	byobMidBufSize   = 512 << 10
	byobFirstBufSize = 64 << 10
	byobMin          = 128 << 10
	byobMinFirst     = 16 << 10
	byobFirst        = 512 << 10
)

// jsReadSizes are the reader helper's buffer sizes and minimums, in the
// order it takes them.
var jsReadSizes = js.ValueOf([]any{byobFirstBufSize, byobMidBufSize, byobBufSize, byobMinFirst, byobMin, byobFirst})

// streamReader reads a ReadableStream of bytes, with a BYOB reader when the
// stream is a byte stream, else with its default reader, through the
// reader helper of jsio_js.go: a read that finds bytes settled costs one
// call into JavaScript and one copy out of the stage; one that waits, a
// wake-up when the read in flight settles.
type streamReader struct {
	h       js.Value // the helper's Reader
	take    js.Value // its take
	id      int      // its wake id
	byob    bool
	wake    chan struct{}
	pending []byte
	scratch []byte
	eof     bool
	onClose func()
	closed  atomic.Bool
	once    sync.Once
}

var _ io.ReadCloser = (*streamReader)(nil)

// newStreamReader locks readable to a new reader.
func newStreamReader(readable js.Value, onClose func()) (*streamReader, error) {
	r := &streamReader{onClose: onClose, wake: make(chan struct{}, 1)}
	r.id = registerWake(jsWaiter{wake: r.wake})
	h, err := jsTry(func() js.Value { return jsIO.Call("reader", readable, r.id, jsReadSizes) })
	if err != nil {
		unregisterWake(r.id)
		return nil, err
	}
	r.h, r.take, r.byob = h, h.Get("take"), h.Get("byob").Bool()
	return r, nil
}

func (r *streamReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(r.pending) == 0 {
		if r.eof || r.closed.Load() {
			unregisterWake(r.id)
			return 0, io.EOF
		}
		stageMu.Lock()
		code := r.take.Invoke().Int()
		if code == -1 { // nothing settled yet: wait for the read in flight
			stageMu.Unlock()
			<-r.wake
			continue
		}
		if code == -2 {
			stageMu.Unlock()
			unregisterWake(r.id)
			return 0, streamError(toJSError(r.h.Get("err")))
		}
		// A read that ends the stream may still carry bytes.
		n := code >> 1
		r.eof = code&1 == 1
		if n > 0 && n <= len(p) {
			stageCopyOut(p[:n])
		} else if n > 0 {
			if cap(r.scratch) < n {
				r.scratch = make([]byte, n)
			}
			stageCopyOut(r.scratch[:n])
			r.pending = r.scratch[:n]
		}
		stageMu.Unlock()
		if n > 0 && len(r.pending) == 0 {
			return n, nil
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// Close cancels the stream; a pending Read ends with io.EOF or an error.
func (r *streamReader) Close() error {
	r.once.Do(func() {
		r.closed.Store(true)
		_, _ = jsTry(func() js.Value { r.h.Call("close"); return js.Undefined() })
		select {
		case r.wake <- struct{}{}:
		default:
		}
		unregisterWake(r.id)
		if r.onClose != nil {
			r.onClose()
		}
	})
	return nil
}

var errNoBody = errors.New("response has no body")
