package netem

import (
	"context"
	"sync"
	"time"
)

// packet is a chunk in flight and the time it arrives at the far end.
type packet struct {
	b  []byte
	at time.Time
}

// line is one direction of a link: a bounded FIFO of packets, each released
// Delay after it leaves the queue, leaving at Rate.
type line struct {
	link  Link
	limit int // bytes

	mu     sync.Mutex
	cond   *sync.Cond
	q      []packet
	bytes  int
	last   time.Time // departure of the last packet queued (for Rate)
	closed bool      // no more pushes; pop drains then reports done
	dead   bool      // discard everything: the far side is gone
}

func newLine(l Link, limit int) *line {
	ln := &line{link: l, limit: limit}
	ln.cond = sync.NewCond(&ln.mu)
	return ln
}

// stamp computes the arrival time of n bytes sent now. Callers hold mu.
func (l *line) stamp(n int) time.Time {
	now := time.Now()
	dep := now
	if l.link.Rate > 0 {
		if l.last.After(dep) {
			dep = l.last
		}
		dep = dep.Add(time.Duration(float64(n) / float64(l.link.Rate) * float64(time.Second)))
		l.last = dep
	}
	return dep.Add(l.link.Delay)
}

// push queues b, waiting while the queue is full (TCP backpressure). It
// returns false once the line is dead or closed.
func (l *line) push(b []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.dead && !l.closed && l.bytes > 0 && l.bytes+len(b) > l.limit {
		l.cond.Wait()
	}
	if l.dead || l.closed {
		return false
	}
	l.q = append(l.q, packet{b: b, at: l.stamp(len(b))})
	l.bytes += len(b)
	l.cond.Broadcast()
	return true
}

// offer queues b unless the queue is full (UDP: a full queue drops).
func (l *line) offer(b []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.closed || l.bytes+len(b) > l.limit {
		return false
	}
	l.q = append(l.q, packet{b: b, at: l.stamp(len(b))})
	l.bytes += len(b)
	l.cond.Broadcast()
	return true
}

// close ends the input: pop drains what is queued, then reports done.
func (l *line) close() {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

// kill discards the queue and wakes every waiter.
func (l *line) kill() {
	l.mu.Lock()
	l.dead = true
	l.q, l.bytes = nil, 0
	l.cond.Broadcast()
	l.mu.Unlock()
}

// pop waits for the next packet; ok is false when the line is closed and
// drained, or dead.
func (l *line) pop() (packet, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.dead && len(l.q) == 0 && !l.closed {
		l.cond.Wait()
	}
	if l.dead || len(l.q) == 0 {
		return packet{}, false
	}
	p := l.q[0]
	l.q[0] = packet{}
	l.q = l.q[1:]
	l.bytes -= len(p.b)
	l.cond.Broadcast()
	return p, true
}

// deliver pops packets and writes each at its arrival time, until the line
// ends, ctx is done, or write fails (the line is then killed). It returns
// true when the line was drained normally.
func (l *line) deliver(ctx context.Context, write func([]byte) error) bool {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p, ok := l.pop()
		if !ok {
			l.mu.Lock()
			dead := l.dead
			l.mu.Unlock()
			return !dead
		}
		if d := time.Until(p.at); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				l.kill()
				return false
			}
		}
		if err := write(p.b); err != nil {
			l.kill()
			return false
		}
	}
}
