package importer

import (
	"errors"
	"io"
	"sync"
)

// aheadWriter buffers what is written to it, like a bufio.Writer, but
// writes each full buffer to w on a goroutine of its own while the next
// one fills: building a CAR reads the tree's files and hashes them on one
// core while the CAR's own writes (a copy into the page cache, as costly
// as the hashing) go on on the other. At most aheadBuffers buffers exist;
// Write waits for one to come back when all are full or being written.
//
// Flush writes what is buffered and returns once everything written so
// far is written (or the first error). The writer must be flushed (or
// closed) before the file is written otherwise, and before it is dropped:
// Close ends its goroutine.
type aheadWriter struct {
	w    io.Writer
	size int

	cur  []byte        // the buffer being filled
	free chan []byte   // buffers ready to be filled
	full chan []byte   // buffers to write, in order
	done chan struct{} // closed when the goroutine has ended

	mu     sync.Mutex
	err    error // the first write error
	wg     sync.WaitGroup
	closed bool
}

var errAheadClosed = errors.New("importer: write after close")

const (
	aheadBufferSize = 1 << 20
	aheadBuffers    = 4
)

func newAheadWriter(w io.Writer) *aheadWriter {
	a := &aheadWriter{
		w:    w,
		size: aheadBufferSize,
		free: make(chan []byte, aheadBuffers),
		full: make(chan []byte, aheadBuffers),
		done: make(chan struct{}),
	}
	for range aheadBuffers {
		a.free <- make([]byte, 0, a.size)
	}
	go a.run()
	return a
}

// run writes the full buffers in order and gives them back.
func (a *aheadWriter) run() {
	defer close(a.done)
	for b := range a.full {
		if a.failed() == nil {
			if _, err := a.w.Write(b); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		a.free <- b[:0]
		a.wg.Done()
	}
}

func (a *aheadWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Write copies p into the buffers, handing each full one to the writing
// goroutine.
func (a *aheadWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	if a.closed {
		return 0, errAheadClosed
	}
	n := 0
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = <-a.free
		}
		k := copy(a.cur[len(a.cur):a.size], p)
		a.cur = a.cur[:len(a.cur)+k]
		p, n = p[k:], n+k
		if len(a.cur) == a.size {
			a.send()
		}
	}
	return n, nil
}

// send hands the current buffer to the goroutine.
func (a *aheadWriter) send() {
	a.wg.Add(1)
	a.full <- a.cur
	a.cur = nil
}

// Flush writes what is buffered and waits until every write is done.
func (a *aheadWriter) Flush() error {
	if len(a.cur) > 0 {
		a.send()
	}
	a.wg.Wait()
	return a.failed()
}

// Close flushes and ends the goroutine. It may be called more than once.
func (a *aheadWriter) Close() error {
	if a.closed {
		return a.failed()
	}
	err := a.Flush()
	a.closed = true
	close(a.full)
	<-a.done
	return err
}
