//go:build js

package wasmclient

import (
	"errors"
	"io"
	"sync"
	"syscall/js"
	"time"
)

// bodyStreams turns response bodies into JS ReadableStreams of verified
// bytes. For each stream a pump goroutine reads the body in chunks of up to
// chunk bytes (a block until a read filled one) and enqueues them while
// the stream's queue holds less than readAhead bytes, so fetching and verifying
// the next blocks overlaps with the page consuming the previous ones; when
// the queue is full it waits for the stream's next pull. A failed body errors
// the stream: it never just ends early.
//
// The first chunk of a body longer than one chunk is the exception: the
// pump reads on only once the page took it. The browser moves a response's body from the worker's thread to
// the page through tasks of that same thread, which the Go worker
// verifying the next bytes of the response would otherwise hold up: on a
// busy machine the browser took the first chunk 10–40 ms after the
// response was answered (docs/benchmarks.md, "The first verified byte of
// 1 MiB").
// The bytes still arrive meanwhile; they are verified once the page has
// its first, in a later task than the page's read that took it (the
// stream calls pull inside that read, before its answer).
//
// The underlying sources' start, pull and cancel are three js.Funcs shared
// by every stream (they find their pump by the source's id), so none is
// ever released while the browser may still call it; they never block.
type bodyStreams struct {
	chunk     int
	readAhead int
	log       Logger
	strategy  js.Value // {highWaterMark: readAhead} bytes, shared by every stream

	mu    sync.Mutex
	next  int
	pumps map[int]*pump

	start, pull, cancel js.Func
}

// firstChunk is the size of a stream's first chunks: a block.
const firstChunk = 256 << 10

// pump is one stream's state.
type pump struct {
	body io.ReadCloser
	hold bool          // the first chunk waits for the page's read
	wake chan struct{} // a pull happened (buffered, 1)
	done chan struct{} // closed on cancel
	once sync.Once
}

func newBodyStreams(chunk, readAhead int, log Logger) *bodyStreams {
	s := &bodyStreams{chunk: chunk, readAhead: readAhead, log: log, pumps: map[int]*pump{},
		strategy: jsByteLengthStrategy.New(map[string]any{"highWaterMark": readAhead})}
	s.start = js.FuncOf(func(this js.Value, args []js.Value) any {
		if p := s.lookup(this); p != nil {
			go s.run(this.Get("id").Int(), p, arg(args, 0))
		}
		return nil
	})
	s.pull = js.FuncOf(func(this js.Value, _ []js.Value) any {
		if p := s.lookup(this); p != nil {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		return nil
	})
	s.cancel = js.FuncOf(func(this js.Value, _ []js.Value) any {
		if p := s.lookup(this); p != nil {
			p.once.Do(func() {
				close(p.done)
				go func() { _ = p.body.Close() }() // unblocks the pump's Read
			})
		}
		return nil
	})
	return s
}

// New returns a ReadableStream of body's bytes; size is the body's length,
// or -1 when unknown. A body of at most one chunk is not held at its first
// chunk: what the page waits for there is its end.
func (s *bodyStreams) New(body io.ReadCloser, size int64) js.Value {
	p := &pump{body: body, hold: size < 0 || size > int64(s.chunk), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.next++
	id := s.next
	s.pumps[id] = p
	s.mu.Unlock()
	src := jsObject.New()
	src.Set("id", id)
	src.Set("start", s.start)
	src.Set("pull", s.pull)
	src.Set("cancel", s.cancel)
	return jsReadableStream.New(src, s.strategy)
}

// lookup returns the pump of the underlying source src, or nil once it ended.
func (s *bodyStreams) lookup(src js.Value) *pump {
	if src.Type() != js.TypeObject {
		return nil
	}
	id := src.Get("id")
	if id.Type() != js.TypeNumber {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pumps[id.Int()]
}

// run moves p.body into the stream controlled by ctrl until the body ends,
// fails or the stream is cancelled.
func (s *bodyStreams) run(id int, p *pump, ctrl js.Value) {
	defer func() {
		s.mu.Lock()
		delete(s.pumps, id)
		s.mu.Unlock()
	}()
	call := func(method string, args ...any) error {
		_, err := jsTry(func() js.Value { ctrl.Call(method, args...); return js.Undefined() })
		return err
	}
	// The buffer starts at a block and grows to chunk once a read filled
	// it: a body that never has more than a block ready keeps the small one.
	buf := make([]byte, min(s.chunk, firstChunk))
	taken := !p.hold // the page took a chunk: read ahead
	for {
		n, err := p.body.Read(buf)
		select {
		case <-p.done:
			return // cancelled; cancel closes the body
		default:
		}
		if n > 0 {
			if call("enqueue", bytesToJS(buf[:n])) != nil {
				_ = p.body.Close()
				return
			}
			if n == len(buf) && n < s.chunk {
				buf = make([]byte, s.chunk)
			}
		}
		if err != nil {
			_ = p.body.Close()
			if errors.Is(err, io.EOF) {
				_ = call("close")
			} else {
				s.log.Warn("body failed", "err", err)
				_ = call("error", jsErrorValue(err))
			}
			return
		}
		// Read ahead while the queue has room, once the page took a
		// chunk (the queue emptied: the whole readAhead is desired);
		// else wait for a pull (the page's read calls one).
		for {
			ds := ctrl.Get("desiredSize") // null once the stream errored
			if ds.Type() != js.TypeNumber {
				_ = p.body.Close()
				return
			}
			if !taken && ds.Float() >= float64(s.readAhead) {
				// The page's read that took the first chunk called pull,
				// which woke this goroutine inside that read, before its
				// answer: wait for a later task of the thread, so the
				// browser hands the chunk on before the next bytes are
				// verified.
				taken = true
				select {
				case <-time.After(time.Millisecond):
				case <-p.done:
					return
				}
			}
			if taken && ds.Float() > 0 {
				break
			}
			select {
			case <-p.wake:
			case <-p.done:
				return
			}
		}
	}
}
