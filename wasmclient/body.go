package wasmclient

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/verity-cdn/verity/internal/verify"
)

// body yields the verified bytes [from, to] of the entity. When the current
// source fails it reports it and resumes from the next source at the first
// byte not yet delivered, so the reader sees one continuous body, or an error.
type body struct {
	f         *fetch
	from, to  int64
	remaining int64

	mu     sync.Mutex // guards cur against Close from another goroutine
	cur    *attempt
	closed atomic.Bool

	err       error // sticky
	retried   bool  // the current source was retried after an idle failure
	repaid    bool  // the current source was retried with a new voucher
	delivered atomic.Int64
	once      sync.Once
}

var _ io.ReadCloser = (*body)(nil)

func (b *body) Read(p []byte) (int, error) {
	for {
		if b.err != nil {
			return 0, b.err
		}
		if b.closed.Load() {
			b.end(ErrClosed)
			return 0, b.err
		}
		if b.remaining == 0 {
			b.closeCurrent()
			b.end(io.EOF)
			return 0, io.EOF
		}
		a := b.current()
		if a == nil {
			var err error
			if a, err = b.resume(); err != nil {
				b.end(err)
				return 0, err
			}
		}
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		idle := b.f.c.cfg.Now().Sub(a.lastUse) > b.f.c.cfg.IdleTimeout
		a.arm(b.f.c.cfg.IdleTimeout)
		n, err := a.vr.Read(p)
		a.disarm()
		a.lastUse = b.f.c.cfg.Now()
		b.remaining -= int64(n)
		b.delivered.Add(int64(n))
		if err == io.EOF && b.remaining > 0 {
			err = errShortBody
		}
		if err != nil && err != io.EOF {
			b.closeCurrent()
			switch {
			case b.closed.Load():
			case idle && n == 0 && !b.retried:
				// The reader paused longer than the source's patience: the
				// source may have closed an idle stream. Not its fault; ask
				// it again first.
				b.retried = true
				b.f.retry = &a.src
			case !b.repaid && b.f.renewVoucher(a):
				// The worker stopped paying on the stream: the voucher's
				// per-node cap is spent (a body larger than the cap from
				// one node) or it expired. Not the node's fault, and the
				// node serves on under a new voucher: ask it again, over
				// the same transport, from the first byte not delivered.
				b.repaid = true
				b.f.retry = &a.src
			default:
				b.f.fail(a, err)
			}
		}
		if n > 0 {
			b.retried, b.repaid = false, false
			return n, nil
		}
	}
}

func (b *body) current() *attempt {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

// resume opens the next source for the bytes not yet delivered.
func (b *body) resume() (*attempt, error) {
	f := b.f
	for {
		if b.closed.Load() {
			return nil, ErrClosed
		}
		again := b.repaid && f.retry != nil // the same source under a new voucher
		src, ok := f.nextSource()
		if !ok {
			return nil, f.exhausted()
		}
		a, ent, err := f.open(src, &verify.ByteRange{From: b.from + b.delivered.Load(), To: b.to})
		if err == nil && (ent.Kind != f.entity.Kind || !ent.CID.Equal(f.entity.CID)) {
			a.close()
			err = errEntityChanged
		}
		if err != nil {
			f.fail(a, err)
			continue
		}
		if !again {
			f.failovers++
		}
		f.rec.Transport, f.rec.Node = src.transport.Name(), src.node.ID
		b.mu.Lock()
		if b.closed.Load() {
			b.mu.Unlock()
			a.close()
			return nil, ErrClosed
		}
		b.cur = a
		b.mu.Unlock()
		return a, nil
	}
}

func (b *body) closeCurrent() {
	b.mu.Lock()
	a := b.cur
	b.cur = nil
	b.mu.Unlock()
	if a != nil {
		a.close()
	}
}

// end makes err sticky and records the request's stats once.
func (b *body) end(err error) {
	b.err = err
	b.record(err)
}

func (b *body) record(err error) {
	b.once.Do(func() {
		if err == io.EOF {
			err = nil
		}
		b.f.finish(b.f.rec.Status, b.delivered.Load(), err)
	})
}

// Close releases the current source. Safe to call concurrently with Read
// (it unblocks it) and more than once.
func (b *body) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.closeCurrent()
	if b.delivered.Load() < b.to-b.from+1 {
		b.record(errCancelled)
	} else {
		b.record(nil)
	}
	return nil
}
