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
// The streams are made by the stream helper of jsio_js.go: a chunk costs
// one copy into the stage and one call, which enqueues a fresh copy and
// answers the queue's desiredSize, and the stream's pull calls into Go only
// when the pump waits for it.
type bodyStreams struct {
	chunk     int
	readAhead int
	log       Logger
	strategy  js.Value // {highWaterMark: readAhead} bytes, shared by every stream

	mu    sync.Mutex
	pumps map[int]*pump
}

// firstChunk is the size of a stream's first chunks: a block.
const firstChunk = 256 << 10

// pump is one stream's state.
type pump struct {
	body io.ReadCloser
	h    js.Value // the stream helper's handle
	put  js.Value // its put and wait
	wait js.Value
	hold bool          // the first chunk waits for the page's read
	wake chan struct{} // a pull happened (buffered, 1)
	done chan struct{} // closed on cancel
	once sync.Once
}

func newBodyStreams(chunk, readAhead int, log Logger) *bodyStreams {
	return &bodyStreams{chunk: chunk, readAhead: readAhead, log: log, pumps: map[int]*pump{},
		strategy: jsByteLengthStrategy.New(map[string]any{"highWaterMark": readAhead})}
}

// New returns a ReadableStream of body's bytes; size is the body's length,
// or -1 when unknown. A body of at most one chunk is not held at its first
// chunk: what the page waits for there is its end.
func (s *bodyStreams) New(body io.ReadCloser, size int64) js.Value {
	p := &pump{body: body, hold: size < 0 || size > int64(s.chunk), wake: make(chan struct{}, 1), done: make(chan struct{})}
	id := registerWake(jsWaiter{wake: p.wake, cancel: func() {
		p.once.Do(func() {
			close(p.done)
			go func() { _ = p.body.Close() }() // unblocks the pump's Read
		})
	}})
	s.mu.Lock()
	s.pumps[id] = p
	s.mu.Unlock()
	p.h = jsIO.Call("stream", id, s.strategy)
	p.put, p.wait = p.h.Get("put"), p.h.Get("wait")
	go s.run(id, p)
	return p.h.Get("rs")
}

// run moves p.body into p's stream until the body ends, fails or the
// stream is cancelled.
func (s *bodyStreams) run(id int, p *pump) {
	defer func() {
		unregisterWake(id)
		s.mu.Lock()
		delete(s.pumps, id)
		s.mu.Unlock()
	}()
	// The buffer starts at a block and grows to chunk once a read filled
	// it: a body that never has more than a block ready keeps the small one.
	buf := make([]byte, min(s.chunk, firstChunk))
	taken := !p.hold // the page took a chunk: read ahead
	// ahead is how many bytes the pump keeps queued ahead of the page: as
	// many as the page has taken so far, at least a quarter of readAhead
	// and at most readAhead. A page that keeps taking bytes soon has the
	// whole read-ahead, while one that stops after its first bytes (a
	// media element that has its metadata, a cancelled download) leaves
	// the rest of the body unread, unverified and unpaid for.
	ahead := max(s.readAhead/4, 1)
	sent := 0 // bytes enqueued
	for {
		n, err := p.body.Read(buf[:min(len(buf), max(ahead, firstChunk))])
		select {
		case <-p.done:
			return // cancelled; cancel closes the body
		default:
		}
		if n > 0 {
			stageMu.Lock()
			stageCopyIn(buf[:n])
			ds := p.put.Invoke(n)
			stageMu.Unlock()
			if ds.Type() != js.TypeNumber { // the stream errored or was cancelled
				_ = p.body.Close()
				return
			}
			if n == len(buf) && n < s.chunk {
				buf = make([]byte, s.chunk)
			}
			sent += n
		}
		if err != nil {
			_ = p.body.Close()
			if errors.Is(err, io.EOF) {
				p.h.Call("end")
			} else {
				s.log.Warn("body failed", "err", err)
				p.h.Call("end", jsErrorValue(err))
			}
			return
		}
		// Read ahead while fewer than ahead bytes are queued, once the
		// page took a chunk (the queue emptied: the whole readAhead is
		// desired); else wait for a pull (the page's read calls one).
		// wait asks for a wake-up unless the queue desires min bytes
		// already. The queue holds readAhead − desiredSize bytes.
		for {
			need := s.readAhead
			if taken {
				need -= ahead - 1
			}
			ds := p.wait.Invoke(need) // null once the stream errored
			if ds.Type() != js.TypeNumber {
				_ = p.body.Close()
				return
			}
			d := int(ds.Float())
			if !taken && d >= s.readAhead {
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
			if taken {
				// ahead only grows, so the need only shrinks: a d below
				// the new one was below the one wait was given, which
				// asked for a wake-up.
				ahead = min(s.readAhead, max(ahead, sent-(s.readAhead-d)))
				if d > s.readAhead-ahead {
					break
				}
			}
			select {
			case <-p.wake:
			case <-p.done:
				return
			}
		}
	}
}
