package wasmclient

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verity-cdn/verity/internal/verify"
)

// Parallel fetch (docs/protocol.md §7.8). A body of at least
// Config.ParallelThreshold bytes is cut into segments of SegmentSize bytes,
// aligned on absolute file offsets that are multiples of the block size, so
// no block travels twice. Each node gets a lane: a goroutine that takes the
// next segment inside the read-ahead window (which opens as the reader
// takes bytes: windowLocked), asks its node for exactly that
// segment (entity-bytes), verifies it block by block into the segment's
// buffer, and takes the next. The reader returns the segments in order and
// frees each one when it has passed it, so memory is bounded by
// ReadAhead × SegmentSize whatever the file's size.
//
// Hedging: a lane with nothing new to take looks for a segment whose only
// fetcher (on another node) has delivered nothing for that node's hedge
// delay (Scores.HedgeDelay) and asks its own node for the rest of it. Both
// requests start at the first byte the segment lacks; the first to deliver
// a verified block claims the segment and the other is cancelled.
//
// Failover: a lane whose node fails (bad block, reset, truncation, stall
// past IdleTimeout) is reported and dropped like in the single-stream body;
// its segment goes back to the queue from its first missing byte, a spare
// node (if any) gets a lane, and when no node lane is left the gateway
// fallback gets one. When that fails too the body fails: never a short or
// reordered body.

// errLost ends a fetcher whose segment was claimed by another (a hedge won,
// or the body closed). It is not the node's fault.
var errLost = errors.New("segment served by another source")

// blockAlign is the alignment of segment boundaries: the project's chunk
// size (design: 256 KiB fixed-size chunks).
const blockAlign = 256 << 10

// pbody is the parallel body: the verified bytes [from, to] of the entity.
type pbody struct {
	f        *fetch
	from, to int64
	segSize  int64
	nseg     int
	window   int
	tick     time.Duration

	ctx    context.Context // cancelled by Close and at the end; parent of the lanes' attempts
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced on every change
	segs     map[int]*pseg
	assigned int   // segments [0, assigned) were handed out at least once
	pending  []int // segments whose fetchers all failed, lowest first
	read     int   // segment the reader is in
	readOff  int   // bytes of it already returned
	taken    int64 // bytes returned
	lanes    int   // lanes running
	spare    []*lane
	parked   []*lane // lanes stopped for their rate (take)
	gateway  *lane   // fallback lane, started when no node lane is left
	err      error   // terminal error of the lanes
	closed   bool
	free     [][]byte
	// slowHedged: a slow segment was hedged by a node not measured yet
	// in this body (slowLocked).
	slowHedged bool
	// rates: each node's rate over its last segment of this body (half a
	// segment or more): what this link carries from it now. Scores keep
	// rates of other times, maybe of another link.
	rates map[string]float64
	// nodes: a lane of each of the body's nodes, with its score's
	// throughput when the body started (floorLocked).
	nodes []*lane

	delivered atomic.Int64
	once      sync.Once
}

// pseg is one segment inside the window.
type pseg struct {
	idx      int
	from     int64 // absolute offset of buf[0]
	buf      []byte
	filled   int
	fetchers []*pfetch
	owner    *pfetch // nil: unclaimed (a hedge is racing)
	progress time.Time
	// since and sinceFilled: when the segment's fetcher took it, and its
	// bytes then (its rate, for slowLocked).
	since       time.Time
	sinceFilled int
}

// restart starts the segment's rate afresh: a fetcher took it at now.
// (deliver also moves the window on once it spans QuietTimeout at its
// floor or more, so that a fast start does not hide a later trickle.)
func (s *pseg) restart(now time.Time) {
	s.progress, s.since, s.sinceFilled = now, now, s.filled
}

func (s *pseg) complete() bool { return s.filled == len(s.buf) }

// pfetch is one lane working on one segment.
type pfetch struct {
	lane      *lane
	seg       *pseg
	a         *attempt // nil while opening
	cancelled bool     // guarded by pbody.mu
}

// lane fetches segments from one node (over its transports in order) or
// from the gateway.
type lane struct {
	p      *pbody
	node   Node
	srcs   []source
	first  *attempt // already open at the body's first byte (the attempt that resolved the entity)
	repaid bool     // the lane's last segment failed on payment and was asked again under a new voucher
	start  job      // the first lane's first job: segment 0 from a
	tmp    []byte
	// benched: a segment of the lane was hedged for its rate (guarded by
	// pbody.mu).
	benched bool
	scored  float64 // the node's fresh throughput score at the body's start
}

// newParallel builds the parallel body; a is the attempt that resolved the
// entity, positioned at from. It returns nil when fewer than two nodes can
// take part (the caller then uses the single-stream body).
func (f *fetch) newParallel(a *attempt, from, to int64) io.ReadCloser {
	cfg := f.c.cfg
	length := to - from + 1
	if cfg.ParallelThreshold < 0 || length < cfg.ParallelThreshold || a.src.gateway {
		return nil
	}
	// One lane per node: the node of a first, then the others in the
	// order of the sources (ranked by score).
	byNode := map[string]*lane{}
	var order []*lane
	for _, s := range f.srcs {
		if s.gateway {
			continue
		}
		if s.node.ID != a.src.node.ID && f.c.isDropped(s.node.ID) {
			continue
		}
		l := byNode[s.node.ID]
		if l == nil {
			l = &lane{node: s.node}
			byNode[s.node.ID] = l
			order = append(order, l)
		}
		l.srcs = append(l.srcs, s)
	}
	first := byNode[a.src.node.ID]
	if first == nil {
		return nil
	}
	// The node that answered first uses the transport that worked.
	for i, s := range first.srcs {
		if s.transport == a.src.transport {
			first.srcs[0], first.srcs[i] = first.srcs[i], first.srcs[0]
			break
		}
	}
	first.first = a
	lanes := []*lane{first}
	for _, l := range order {
		if l != first {
			lanes = append(lanes, l)
		}
	}

	seg := cfg.SegmentSize
	startSeg := from / seg
	nseg := int((to/seg - startSeg) + 1)
	ctx, cancel := context.WithCancel(f.ctx)
	p := &pbody{
		f: f, from: from, to: to, segSize: seg, nseg: nseg, window: cfg.ReadAheadSegments,
		tick: cfg.HedgeMin / 2, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}), segs: map[int]*pseg{}, rates: map[string]float64{},
	}
	for _, l := range lanes {
		l.scored = f.c.scores.FreshThroughput(l.node.ID)
	}
	p.nodes = lanes
	if p.tick < 10*time.Millisecond {
		p.tick = 10 * time.Millisecond
	}
	if cfg.Fallback != nil {
		for _, s := range f.srcs {
			if s.gateway {
				p.gateway = &lane{node: s.node, srcs: []source{s}}
			}
		}
	}
	n := cfg.MaxParallel
	if n > len(lanes) {
		n = len(lanes)
	}
	// A node whose transport gains from several streams at once (WebRTC:
	// the page spreads them over several peer connections) gets sibling
	// lanes, so even one node can fetch several segments at once: unpaid,
	// or paid to a node that takes receipts in any order.
	running := lanes[:n:n]
	for _, l := range lanes[:n] {
		if f.c.payer != nil && !f.c.payer.severalStreams(l.node.ID) {
			continue
		}
		for i := 1; i < nodeLanes(l.srcs[0].transport); i++ {
			running = append(running, &lane{node: l.node, srcs: l.srcs})
		}
	}
	if len(running) < 2 {
		return nil
	}
	p.spare = lanes[n:]
	p.mu.Lock()
	first.start, _ = p.pickLocked(first)
	for _, l := range running {
		p.startLocked(l)
	}
	p.mu.Unlock()
	f.rec.Parallel = n
	f.rec.Lanes = len(running)
	return p
}

// nodeLanes is how many segments of one body t fetches from one node at
// once (1 unless t is a NodeLaner asking for more).
func nodeLanes(t Transport) int {
	if nl, ok := t.(NodeLaner); ok && nl.NodeLanes() > 1 {
		return nl.NodeLanes()
	}
	return 1
}

// bounds returns the absolute byte range of segment i.
func (p *pbody) bounds(i int) (int64, int64) {
	start := (p.from/p.segSize + int64(i)) * p.segSize
	end := start + p.segSize - 1
	if start < p.from {
		start = p.from
	}
	if end > p.to {
		end = p.to
	}
	return start, end
}

func (p *pbody) signalLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *pbody) startLocked(l *lane) {
	l.p = p
	p.lanes++
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		l.run()
	}()
}

// job is a segment handed to a lane, from byte off of the segment.
type job struct {
	pf  *pfetch
	off int
}

// take blocks until the lane has a segment to fetch; false when the lane
// should stop.
func (p *pbody) take(l *lane) (job, bool) {
	timer := time.NewTimer(p.tick)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.closed || p.err != nil {
			p.mu.Unlock()
			return job{}, false
		}
		if l.benched && p.lanes > 1 {
			// Hedged for its rate: the lane stops while another runs.
			// A spare node takes its place, if any; it runs again
			// before the gateway's lane if every other lane stops
			// (laneDone).
			p.parked = append(p.parked, l)
			p.mu.Unlock()
			return job{}, false
		}
		if j, ok := p.pickLocked(l); ok {
			p.mu.Unlock()
			return j, true
		}
		if p.assigned == p.nseg && len(p.pending) == 0 && p.allCompleteLocked() {
			p.mu.Unlock()
			return job{}, false
		}
		ch := p.wake
		p.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(p.tick)
		select {
		case <-ch:
		case <-timer.C:
		case <-p.ctx.Done():
			return job{}, false
		}
	}
}

func (p *pbody) allCompleteLocked() bool {
	for _, s := range p.segs {
		if !s.complete() {
			return false
		}
	}
	return true
}

// pickLocked finds work for l: a failed segment, the next new segment
// inside the window, or a stalled segment to hedge.
func (p *pbody) pickLocked(l *lane) (job, bool) {
	now := p.f.c.cfg.Now()
	if len(p.pending) > 0 {
		s := p.segs[p.pending[0]]
		p.pending = p.pending[1:]
		pf := &pfetch{lane: l, seg: s}
		s.fetchers = append(s.fetchers, pf)
		s.owner = pf
		s.restart(now)
		return job{pf: pf, off: s.filled}, true
	}
	// The segment the reader waits on comes first: hedge it if stalled.
	if j, ok := p.hedgeLocked(l, now, true); ok {
		return j, true
	}
	if p.assigned < p.nseg && p.assigned < p.read+p.windowLocked() {
		i := p.assigned
		p.assigned++
		start, end := p.bounds(i)
		size := int(end - start + 1)
		var buf []byte
		if k := len(p.free); k > 0 && cap(p.free[k-1]) >= size {
			buf = p.free[k-1][:size]
			p.free = p.free[:k-1]
		} else {
			buf = make([]byte, size, p.segSize)
		}
		s := &pseg{idx: i, from: start, buf: buf}
		s.restart(now)
		pf := &pfetch{lane: l, seg: s}
		s.fetchers = []*pfetch{pf}
		s.owner = pf
		p.segs[i] = s
		return job{pf: pf, off: 0}, true
	}
	return p.hedgeLocked(l, now, false)
}

// windowLocked is how many segments, from the reader's on, may be fetched:
// the reader's, and one more per half segment the reader has taken, up to
// the read-ahead window. A reader that stops after its first bytes (a
// media element that has its metadata) has one segment fetched, verified
// and paid for, not the whole window; one that keeps reading opens the
// whole window within its first segments.
func (p *pbody) windowLocked() int {
	return int(min(int64(p.window), 1+p.taken/(p.segSize/2)))
}

// hedgeLocked hedges a stalled or slow segment fetched by a single other
// node: the one the reader is in (head) or the lowest such one.
func (p *pbody) hedgeLocked(l *lane, now time.Time, head bool) (job, bool) {
	var best *pseg
	bestOnce := false // best is hedged on the body's one unmeasured hedge
	bestSlow := false // best is hedged for its rate, not a stall
	for _, s := range p.segs {
		if head && s.idx != p.read {
			continue
		}
		if s.complete() || len(s.fetchers) != 1 || s.fetchers[0].lane.node.ID == l.node.ID {
			continue
		}
		other := s.fetchers[0].lane.node.ID
		once, slow := false, false
		if now.Sub(s.progress) < p.f.c.scores.HedgeDelay(other) {
			if slow, once = p.slowLocked(s, now, l); !slow {
				continue
			}
		}
		if best == nil || s.idx < best.idx {
			best, bestOnce, bestSlow = s, once, slow
		}
	}
	if best == nil {
		return job{}, false
	}
	if bestOnce {
		p.slowHedged = true
	}
	if bestSlow {
		// Hedged for its rate: the lane takes no new segment while
		// another runs (take).
		best.fetchers[0].lane.benched = true
	}
	pf := &pfetch{lane: l, seg: best}
	best.fetchers = append(best.fetchers, pf)
	best.owner = nil
	p.f.rec.Hedges++
	p.f.c.cfg.Logger.Debug("hedging segment", "segment", best.idx, "slow", best.fetchers[0].lane.node.ID, "hedge", l.node.ID)
	return job{pf: pf, off: best.filled}, true
}

// slowLocked reports whether segment s, though it progresses, has come
// slower than its floor (floorLocked: MinRate, or an eighth of another
// node's rate) over its rate window (since its fetcher took it, or
// the window last moved on), QuietTimeout or more long (a node trickling
// its groups, each inside the hedge delay), while l's node delivered its
// last segment of this body at 4 times that floor or more: that node shows
// the visitor's link carries more now. A node not measured in this body
// may hedge once per body (once: the hedge would use that allowance). On
// a slow link no node shows more, and a slow segment is hedged at most
// once over the same link.
func (p *pbody) slowLocked(s *pseg, now time.Time, l *lane) (slow, once bool) {
	cfg := &p.f.c.cfg
	floor := p.floorLocked(s)
	if d := now.Sub(s.since); d < cfg.QuietTimeout || atRate(s.filled-s.sinceFilled, d, floor) {
		return false, false
	}
	rate, measured := p.rates[l.node.ID]
	if !measured {
		return !p.slowHedged, true
	}
	return rate >= slowFactor*floor, false
}

// floorLocked is the rate below which segment s counts as slow: MinRate,
// or 1/relFactor of the best rate another of the body's nodes delivered
// at (its last segment of this body, or, for a node not measured in it,
// its fresh score when the body started: Scores.FreshThroughput), if that
// is more. Which node may hedge a segment below its floor is
// slowLocked's. Not inlined: it would be twice in the worker's wasm.
//
//go:noinline
func (p *pbody) floorLocked(s *pseg) float64 {
	floor := p.f.c.cfg.MinRate
	if len(s.fetchers) == 0 {
		return floor
	}
	by := s.fetchers[0].lane.node.ID
	for _, l := range p.nodes {
		rate, measured := p.rates[l.node.ID]
		if !measured {
			rate = l.scored
		}
		if l.node.ID != by && rate/relFactor > floor {
			floor = rate / relFactor
		}
	}
	return floor
}

// atRate reports whether n bytes in d is rate bytes per second or more.
func atRate(n int, d time.Duration, rate float64) bool {
	return float64(n)*float64(time.Second) >= rate*float64(d)
}

// deliver adds verified bytes at offset off of pf's segment; false when pf
// lost the segment (a hedge won, or the body closed).
func (p *pbody) deliver(pf *pfetch, off int, b []byte) bool {
	var losers []*attempt
	defer func() {
		for _, a := range losers {
			a.close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := pf.seg
	if p.closed || pf.cancelled {
		return false
	}
	cfg := &p.f.c.cfg
	now := cfg.Now()
	if s.owner != pf {
		if s.owner != nil || off != s.filled {
			return false
		}
		s.owner = pf // first verified bytes after a hedge: this one wins
		s.restart(now)
		for _, o := range s.fetchers {
			if o != pf {
				o.cancelled = true
				if o.a != nil {
					losers = append(losers, o.a)
				}
			}
		}
		s.fetchers = []*pfetch{pf}
	}
	n := copy(s.buf[s.filled:], b)
	s.filled += n
	s.progress = now
	if d := now.Sub(s.since); d >= cfg.QuietTimeout && atRate(s.filled-s.sinceFilled, d, p.floorLocked(s)) {
		s.since, s.sinceFilled = now, s.filled
	}
	if s.complete() {
		s.fetchers = nil
	}
	p.signalLocked()
	return n == len(b)
}

// opened registers the attempt of pf; false when pf was cancelled meanwhile.
func (p *pbody) opened(pf *pfetch, a *attempt) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pf.cancelled || p.closed {
		return false
	}
	pf.a = a
	return true
}

// failed takes pf off its segment: its lane lost it (err nil) or its
// source failed with err on attempt a (the lane then stops). The segment is
// queued again when nobody else works on it. It reports whether the
// failure is the source's (false: pf had been cancelled).
func (p *pbody) failed(pf *pfetch, a *attempt, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	own := err != nil && !pf.cancelled && !p.closed
	s := pf.seg
	found := false
	for i, o := range s.fetchers {
		if o == pf {
			s.fetchers = append(s.fetchers[:i], s.fetchers[i+1:]...)
			found = true
			break
		}
	}
	if s.owner == pf {
		s.owner = nil
	}
	if found && len(s.fetchers) > 0 {
		// A hedge left alone on the segment: its rate starts now, not
		// with the window of the fetcher that failed.
		s.restart(p.f.c.cfg.Now())
	}
	// Only the fetcher that leaves the segment without anyone on it
	// queues it: a loser taken off by the hedge that won (pf no longer
	// listed) must not queue it a second time after the winner failed.
	if found && !s.complete() && len(s.fetchers) == 0 && !p.closed {
		i := 0
		for i < len(p.pending) && p.pending[i] < s.idx {
			i++
		}
		p.pending = append(p.pending, 0)
		copy(p.pending[i+1:], p.pending[i:])
		p.pending[i] = s.idx
	}
	if own && a != nil {
		p.f.fail(a, err)
		p.f.failovers++
	}
	p.signalLocked()
	return own
}

// laneDone accounts for a lane that stopped; when no lane is left and work
// remains, it starts a spare node's lane, then the gateway's, then fails.
func (p *pbody) laneDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lanes--
	if p.closed || p.err != nil || (p.assigned == p.nseg && len(p.pending) == 0 && p.allCompleteLocked()) {
		return
	}
	for len(p.spare) > 0 {
		l := p.spare[0]
		p.spare = p.spare[1:]
		if p.f.c.isDropped(l.node.ID) {
			continue
		}
		p.startLocked(l)
		return
	}
	if p.lanes > 0 {
		return
	}
	for len(p.parked) > 0 {
		l := p.parked[0]
		p.parked = p.parked[1:]
		if p.f.c.isDropped(l.node.ID) {
			continue
		}
		l.benched = false
		p.startLocked(l)
		return
	}
	if p.gateway != nil {
		l := p.gateway
		p.gateway = nil
		p.startLocked(l)
		return
	}
	p.err = p.f.exhausted()
	p.signalLocked()
}

func (l *lane) run() {
	p := l.p
	defer p.laneDone()
	defer func() {
		if l.first != nil {
			l.first.close()
			l.first = nil
		}
	}()
	j, ok := l.start, l.start.pf != nil
	l.start = job{} // a lane run again (laneDone) takes its segments
	for {
		if !ok {
			if j, ok = p.take(l); !ok {
				return
			}
		}
		ok = false
		a, err := l.fetch(j)
		switch {
		case err == nil:
			l.repaid = false
		case errors.Is(err, errLost):
			p.failed(j.pf, nil, nil)
		case a != nil && !l.repaid && p.f.renewVoucher(a):
			// The worker stopped paying on the stream (the voucher's
			// per-node cap spent, or it expired): not the node's fault,
			// and it serves on under the new voucher. The segment goes
			// back to the queue from its first missing byte; the lane
			// goes on.
			l.repaid = true
			p.failed(j.pf, nil, nil)
		default:
			if p.failed(j.pf, a, err) {
				return
			}
		}
	}
}

// fetch fills j's segment from byte j.off. On error it returns the attempt
// that failed, if one was opened.
func (l *lane) fetch(j job) (*attempt, error) {
	p, s := l.p, j.pf.seg
	f := p.f
	start, end := s.from+int64(j.off), s.from+int64(len(s.buf))-1
	var a *attempt
	if l.first != nil && s.from == p.from && j.off == 0 {
		a, l.first = l.first, nil
	} else {
		if l.first != nil {
			l.first.close()
			l.first = nil
		}
		var err error
		if a, err = l.open(start, end); err != nil {
			return a, err
		}
	}
	if !p.opened(j.pf, a) {
		a.close()
		return nil, errLost
	}
	if l.tmp == nil {
		l.tmp = make([]byte, blockAlign)
	}
	t0 := f.c.cfg.Now()
	pos := start
	for pos <= end {
		buf := l.tmp
		if rest := end - pos + 1; int64(len(buf)) > rest {
			buf = buf[:rest]
		}
		a.arm(f.c.cfg.IdleTimeout)
		n, err := a.vr.Read(buf)
		a.disarm()
		if n > 0 {
			if !p.deliver(j.pf, int(pos-s.from), buf[:n]) {
				a.close()
				return nil, errLost
			}
			pos += int64(n)
		}
		if pos > end {
			break
		}
		if err == io.EOF {
			err = errShortBody
		}
		if err != nil {
			a.close()
			return a, err
		}
	}
	a.close()
	// Only a transfer of half a segment or more measures a rate: a short
	// one (a body's last bytes, the rest of a segment after a hedge) comes
	// with its head, in microseconds, at no rate the link carries.
	if n, d := end-start+1, f.c.cfg.Now().Sub(t0); n >= p.segSize/2 && d > 0 {
		f.c.scores.ObserveTransfer(l.node.ID, n, d)
		p.mu.Lock()
		p.rates[l.node.ID] = float64(n) / d.Seconds()
		p.mu.Unlock()
	}
	return nil, nil
}

// open asks the lane's node for [start, end] over its transports in
// order. On error the returned attempt (if any) is the one that failed.
func (l *lane) open(start, end int64) (*attempt, error) {
	f := l.p.f
	var last *attempt
	err := error(ErrNoAddress)
	for _, src := range l.srcs {
		if !src.gateway && f.c.isDropped(src.node.ID) {
			break
		}
		a, ent, oerr := f.openIn(l.p.ctx, src, &verify.ByteRange{From: start, To: end}, 0)
		if oerr == nil && (ent.Kind != f.entity.Kind || !ent.CID.Equal(f.entity.CID)) {
			a.close()
			oerr = errEntityChanged
		}
		if oerr == nil {
			return a, nil
		}
		if errors.Is(oerr, ErrNoAddress) {
			continue
		}
		last, err = a, oerr
		break
	}
	return last, err
}

// Read implements io.Reader: the segments' bytes in order.
func (p *pbody) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.record(ErrClosed)
			return 0, ErrClosed
		}
		if p.read == p.nseg {
			p.mu.Unlock()
			p.end(nil)
			return 0, io.EOF
		}
		if s := p.segs[p.read]; s != nil && s.filled > p.readOff {
			n := copy(b, s.buf[p.readOff:s.filled])
			p.readOff += n
			if half := p.segSize / 2; (p.taken+int64(n))/half != p.taken/half {
				p.signalLocked() // the window opened: lanes waiting for work may have some
			}
			p.taken += int64(n)
			if p.readOff == len(s.buf) {
				delete(p.segs, p.read)
				if len(p.free) < p.window {
					p.free = append(p.free, s.buf[:0])
				}
				p.read++
				p.readOff = 0
				p.signalLocked()
			}
			p.mu.Unlock()
			p.delivered.Add(int64(n))
			return n, nil
		}
		if err := p.err; err != nil {
			p.mu.Unlock()
			p.end(err)
			return 0, err
		}
		ch := p.wake
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.ctx.Done():
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				continue
			}
			err := p.ctx.Err()
			if ferr := p.f.ctx.Err(); ferr != nil {
				err = ferr
			}
			p.end(err)
			return 0, err
		}
	}
}

// end stops the lanes and records the request.
func (p *pbody) end(err error) {
	p.stop()
	p.record(err)
}

func (p *pbody) stop() {
	p.mu.Lock()
	var as []*attempt
	for _, s := range p.segs {
		for _, pf := range s.fetchers {
			pf.cancelled = true
			if pf.a != nil {
				as = append(as, pf.a)
			}
		}
	}
	p.signalLocked()
	p.mu.Unlock()
	p.cancel()
	for _, a := range as {
		a.close()
	}
	p.wg.Wait()
}

func (p *pbody) record(err error) {
	p.once.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.f.finish(p.f.rec.Status, p.delivered.Load(), err)
	})
}

// Close stops every lane. Safe to call concurrently with Read (it unblocks
// it) and more than once.
func (p *pbody) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.stop()
	if p.delivered.Load() < p.to-p.from+1 {
		p.record(errCancelled)
	} else {
		p.record(nil)
	}
	return nil
}
