package wasmclient

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

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

	// A source left for being slow (once per body), and its rate, until
	// the next source's rate judges it.
	leftSlow     bool
	suspect      *attempt
	suspectFloor float64 // the rate the suspect fell below
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
			if a := b.current(); a != nil {
				b.measure(a)
			}
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
		cfg := &b.f.c.cfg
		t0 := cfg.Now()
		idle := t0.Sub(a.lastUse) > cfg.IdleTimeout
		// While a source of another node is left, the source may keep
		// the reader waiting no longer than its slack (see slackAfter),
		// one asked again after its late head too. Not after the reader
		// paused (the idle retry below) or once the body left a slow
		// source.
		limit, judged := cfg.IdleTimeout, false
		if !b.leftSlow && !idle && a.slack < limit {
			if best, other := b.f.otherNodeRate(a.src.node.ID); other {
				limit, judged = a.slack, true
				a.floor = cfg.MinRate
				if best/relFactor > a.floor {
					a.floor = best / relFactor
				}
			}
		}
		raw := a.body.n.Load()
		a.arm(limit)
		n, err := a.vr.Read(p)
		a.disarm()
		a.lastUse = cfg.Now()
		// The transport's bytes, not only the verified ones, count: a
		// plain CAR's block is verified only once whole.
		// got and waited make the source's rate (judgeSuspect).
		got, waited := a.body.n.Load()-raw, a.lastUse.Sub(t0)
		a.got += got
		a.waited += waited
		if judged {
			a.slack = slackAfter(cfg, a.slack, waited, got, a.floor)
			a.slowFired = a.timedOut.Load()
		} else {
			a.slack = cfg.QuietTimeout
		}
		b.remaining -= int64(n)
		b.delivered.Add(int64(n))
		if err == io.EOF && b.remaining > 0 {
			err = errShortBody
		}
		if b.suspect != nil && a != b.suspect && (err == nil || err == io.EOF) {
			b.judgeSuspect(a)
		}
		if err != nil && err != io.EOF {
			// A bad block or a broken answer is not a rate: the bytes
			// before it need not have been the file's.
			reason := classify(a, err)
			if reason != ReasonBadBlock && reason != ReasonProtocol {
				b.measure(a)
			}
			b.closeCurrent()
			switch {
			case b.closed.Load():
			case a.slowFired:
				// Slower than MinRate, with another node or the gateway
				// left: the rest comes from it, not from this node over
				// another transport. Slow is not wrong: whether the node
				// or the visitor's link was slow, the next source's rate
				// tells (judgeSuspect). Not an attempt that failed: it is
				// asked again last, and counted then if it fails.
				b.leftSlow, b.suspect, b.suspectFloor = true, a, a.floor
				b.f.avoid = a.src.node.ID
				b.f.askLast(a.src, true)
			case idle && n == 0 && !b.retried && reason != ReasonBadBlock:
				// The reader paused longer than the source's patience: the
				// source may have closed an idle stream. Not its fault; ask
				// it again first. A bad block is no closed stream.
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

// slackAfter is a source's slack once the reader waited on it for
// waited and got n bytes from it: each wait spends it, each byte earns
// 1/floor of a second back, up to QuietTimeout. A source keeping up with
// the floor never runs out; one trickling below it runs out within
// QuietTimeout of waiting, plus what its bytes earned. Time the reader
// does not wait (the page not reading) costs nothing.
func slackAfter(cfg *Config, slack, waited time.Duration, n int64, floor float64) time.Duration {
	earned := time.Duration(float64(n) / floor * float64(time.Second))
	return min(cfg.QuietTimeout, slack-waited+earned)
}

// measure scores a's node with the rate it delivered the body at, once
// it is left or done: the bytes got over the time from the entity
// verified to the reader's last read (bytes that came before the
// reader's first read came in that time too), when that is 64 KiB or more
// (slowJudgeBytes) and the reader waited on the source for half that time
// or more. A reader that seldom waited was slower than the source, whose
// rate is then not known. Read calls it once per attempt, just before the
// attempt stops being the body's current one.
func (b *body) measure(a *attempt) {
	if d, ok := a.rated(); ok && a.got >= slowJudgeBytes {
		b.f.c.scores.ObserveTransfer(a.src.node.ID, a.got, d)
	}
}

// rated returns the time from a's entity verified to the reader's last
// read, and whether a's rate over it is known: the reader waited on a for
// half that time or more.
func (a *attempt) rated() (time.Duration, bool) {
	d := a.lastUse.Sub(a.reading)
	return d, d > 0 && 2*a.waited >= d
}

// judgeSuspect judges the node left for being slow (the suspect) by
// the rate of a, the source after it, over a's first slowJudgeBytes (a
// body that ends before blames no one). The suspect fell below its floor
// (MinRate, or an eighth of another node's measured rate); if a delivers
// at slowFactor times that floor or more, the visitor's link carries
// that much and the node was slow: it is skipped and scored like a
// failed node, without a report (no one else can check a rate). Slower
// than that, the link may have been what was slow, and no node is blamed.
func (b *body) judgeSuspect(a *attempt) {
	if a.got < slowJudgeBytes {
		return
	}
	s := b.suspect
	b.suspect = nil
	// As for measure: a reader that seldom waited took bytes that piled
	// up while it paused, at no rate the link carries.
	if _, ok := a.rated(); !ok {
		return
	}
	// got/waited < slowFactor × floor, without a division: a source
	// that kept the reader waiting no time at all is infinitely fast.
	if float64(a.got)*float64(time.Second) < slowFactor*b.suspectFloor*float64(a.waited) ||
		s.src.gateway || a.src.node.ID == s.src.node.ID {
		return
	}
	b.f.c.setAside(s.src)
	b.f.c.scores.ObserveError(s.src.node.ID)
}

// How a node left for being slow is judged: by the next source's rate
// over its first slowJudgeBytes, against slowFactor times the floor it
// fell below. The floor is MinRate, or 1/relFactor of the best rate
// measured from another node the body could go to, if that is more.
const (
	slowJudgeBytes = 64 << 10
	slowFactor     = 4
	relFactor      = 8
)

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
