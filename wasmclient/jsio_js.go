//go:build js

package wasmclient

import (
	"sync"
	"syscall/js"
)

// The byte paths between the network and Go (streamReader) and between Go
// and the page (bodyStreams) run through the small JavaScript helpers
// below, so that a read or a chunk costs the worker's thread one or two
// calls across the Go/JavaScript boundary carrying numbers, instead of a
// dozen each creating a js.Value (every object Go holds costs a finalizer)
// and two js.FuncOf per awaited promise (docs/benchmarks.md, "A 32 MiB
// stream through the worker: the thread per MiB").
//
// Bytes cross through one staging Uint8Array shared by every stream, grown
// to the largest read or chunk (1 MiB): Go copies into it or out of it
// with one CopyBytesTo*, JavaScript copies it from or into the buffer it
// gives or takes. A copy into this warm buffer costs tens of GB/s; what a
// chunk for the page costs is the fresh buffer it must be (the page keeps
// it), made by slice in put. stageMu serializes its users: a Go caller
// holds it from the call that fills the stage to the copy that empties it
// (both synchronous JavaScript calls; nothing inside them takes it).
//
// Readers: io.reader(readable, id) locks a reader (BYOB when the stream is a
// byte stream) and keeps one read in flight; take() returns what the read
// that settled gave, staged, and starts the next read, or -1 when none
// settled yet: the reader then calls io.wake(id) once one does. Their read
// buffers are pooled when they end, for the next streams.
//
// Go calls the hot helpers (take, put, wait) with Invoke on a js.Value it
// got once: a Call by name would decode the name from Go's memory each time.
//
// Streams: io.stream(id, strategy) makes the ReadableStream for the page;
// its pull calls io.wake(id) only when Go asked to be woken (wait), so
// enqueueing a chunk no longer calls back into Go.
const jsIOSource = `'use strict';
const io = {stage: new Uint8Array(0)};
io.grow = (n) => { if (io.stage.length < n) io.stage = new Uint8Array(n); };
// wake(id) and cancel(id) call Go with no this: an object there would cost
// Go a js.Value, and a finalizer, per call.
const wake = (id) => { const f = io.wake; f(id); };
const cancel = (id) => { const f = io.cancel; f(id); };
// pool keeps read buffers of the readers that ended, by size, for the next
// readers: each segment of a large file is a new stream, and a buffer of
// fresh memory costs the thread its first touch (about 1 ms per MiB).
// A buffer is pooled only once no read holds it (a BYOB read detaches the
// buffer it was given and hands it back in its result).
const pool = new Map();
const poolMax = 3;
const fromPool = (size) => { const l = pool.get(size); return l && l.length ? l.pop() : new ArrayBuffer(size); };
const toPool = (b) => {
  if (!b) return;
  let l = pool.get(b.byteLength);
  if (!l) { l = []; pool.set(b.byteLength, l); }
  if (l.length < poolMax) l.push(b);
};
io.pooled = () => { let n = 0; for (const l of pool.values()) n += l.length; return n; };
class Reader {
  constructor(r, byob, id, sizes) {
    this.r = r; this.byob = byob; this.id = id;
    [this.firstBuf, this.midBuf, this.buf, this.minFirst, this.min, this.first] = sizes;
    this.spare = null; this.p = null; this.res = null; this.err = undefined; this.failed = false;
    this.waiting = false; this.got = 0; this.closed = false;
    this.take = () => this.take_();
  }
  start() {
    if (this.p || this.closed) return;
    let p;
    try {
      if (!this.byob) {
        p = this.r.read();
      } else {
        const size = this.got < this.firstBuf ? this.firstBuf : this.got < this.first ? this.midBuf : this.buf;
        let b = this.spare;
        this.spare = null;
        if (!b || b.byteLength < size) { toPool(b); b = fromPool(size); }
        p = this.r.read(new Uint8Array(b), {min: this.got < this.first ? this.minFirst : this.min});
      }
    } catch (e) {
      p = Promise.reject(e); // the read's error, in the usual place
    }
    this.p = p;
    p.then((res) => { this.p = null; this.res = res; this.ping(); },
      (err) => { this.p = null; this.err = err; this.failed = true; this.ping(); });
  }
  ping() { if (this.waiting) { this.waiting = false; wake(this.id); } }
  take_() {
    if (this.failed) return -2; // the reason may be undefined itself
    const res = this.res;
    if (!res) {
      if (this.closed && !this.p) return 1;
      this.start();
      this.waiting = true;
      return -1;
    }
    this.res = null;
    const v = res.value;
    let n = 0;
    if (v) {
      n = v.byteLength;
      if (n > 0) { io.grow(n); io.stage.set(v); }
      if (this.byob) this.spare = v.buffer;
    }
    this.got = Math.min(this.got + n, this.first);
    if (!res.done) this.start();
    else { toPool(this.spare); this.spare = null; }
    return 2 * n + (res.done ? 1 : 0);
  }
  close() {
    this.closed = true;
    toPool(this.spare);
    this.spare = null;
    try { this.r.cancel().catch(() => {}); } catch (e) {}
    if (!this.p) this.ping();
  }
}
io.reader = (readable, id, sizes) => {
  let r, byob = true;
  try { r = readable.getReader({mode: 'byob'}); } catch (e) { byob = false; r = readable.getReader(); }
  return new Reader(r, byob, id, sizes);
};
io.stream = (id, strategy) => {
  const h = {c: null, waiting: false};
  h.put = (n) => {
    try { h.c.enqueue(io.stage.slice(0, n)); } catch (e) { return null; }
    return h.c.desiredSize;
  };
  h.wait = (min) => {
    const d = h.c.desiredSize;
    if (d !== null && !(d >= min)) h.waiting = true;
    return d;
  };
  h.end = (err) => { try { if (err === undefined) h.c.close(); else h.c.error(err); } catch (e) {} };
  h.rs = new ReadableStream({
    start(c) { h.c = c; },
    pull() { if (h.waiting) { h.waiting = false; wake(id); } },
    cancel() { cancel(id); },
  }, strategy);
  return h;
};
// once(v) is a stream of the one chunk v.
io.once = (v) => new ReadableStream({ start(c) { if (v.byteLength) c.enqueue(v); c.close(); } });
return io;`

var (
	// jsIO is the helpers' object; its wake and cancel are set by Go. It
	// is made with the Function constructor, which a Content-Security-Policy
	// on the worker's script without 'unsafe-eval' forbids (the gateway
	// sends none): then jsIOErr says why and NewWorker fails with it, so the
	// worker script answers from the network.
	jsIO, jsIOErr = jsTry(func() js.Value { return js.Global().Get("Function").New(jsIOSource).Invoke() })

	// stageMu guards the staging buffer; stage is Go's handle on it, of
	// stageLen bytes (JavaScript grows it only past the length Go saw).
	stageMu  sync.Mutex
	stage    = js.Undefined()
	stageLen int

	jsWakeMu sync.Mutex
	jsWakes  = map[int]jsWaiter{}
	jsNextID int
)

// jsWaiter is what io.wake(id) and io.cancel(id) reach: wake gets a
// non-blocking send (it is buffered), cancel is called (it must not block).
type jsWaiter struct {
	wake   chan<- struct{}
	cancel func()
}

func init() {
	if jsIOErr != nil {
		return
	}
	lookup := func(args []js.Value) jsWaiter {
		id := arg(args, 0)
		if id.Type() != js.TypeNumber {
			return jsWaiter{}
		}
		jsWakeMu.Lock()
		defer jsWakeMu.Unlock()
		return jsWakes[id.Int()]
	}
	// Neither is ever released: the browser may call them at any time.
	jsIO.Set("wake", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if w := lookup(args); w.wake != nil {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
		return nil
	}))
	jsIO.Set("cancel", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if w := lookup(args); w.cancel != nil {
			w.cancel()
		}
		return nil
	}))
}

// registerWake returns a new id for io.wake(id) and io.cancel(id);
// unregisterWake forgets it.
func registerWake(w jsWaiter) int {
	jsWakeMu.Lock()
	defer jsWakeMu.Unlock()
	jsNextID++
	jsWakes[jsNextID] = w
	return jsNextID
}

func unregisterWake(id int) {
	jsWakeMu.Lock()
	delete(jsWakes, id)
	jsWakeMu.Unlock()
}

// stageCopyOut copies the first len(p) staged bytes into p; stageMu is held
// and JavaScript staged at least len(p) bytes.
func stageCopyOut(p []byte) {
	stageFresh(len(p))
	js.CopyBytesToGo(p, stage)
}

// stageCopyIn stages b; stageMu is held.
func stageCopyIn(b []byte) {
	if len(b) > stageLen {
		jsIO.Call("grow", len(b))
	}
	stageFresh(len(b))
	js.CopyBytesToJS(stage, b)
}

// stageFresh refreshes Go's handle on the stage when JavaScript may have
// grown it for n bytes.
func stageFresh(n int) {
	if n > stageLen {
		stage = jsIO.Get("stage")
		stageLen = stage.Length()
	}
}
