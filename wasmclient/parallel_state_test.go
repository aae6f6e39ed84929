//go:build !js

package wasmclient

import (
	"errors"
	"testing"
	"time"
)

// TestParallelHedgeLoserDoesNotRequeue: a hedge wins a segment and then
// fails, and only afterwards the cancelled loser reports back. The
// segment is queued once: it is fetched again by one lane, read, and the
// next lane gets the next segment (a second queue entry would hand out a
// segment already read and freed).
func TestParallelHedgeLoserDoesNotRequeue(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := Config{Now: func() time.Time { return now }}.normalize()
	c := &Client{cfg: cfg, scores: newScores(cfg), dropped: map[string]time.Time{}}
	f := &fetch{c: c}
	const seg = blockAlign
	p := &pbody{
		f: f, from: 0, to: 2*seg - 1, segSize: seg, nseg: 2, window: 1,
		wake: make(chan struct{}), segs: map[int]*pseg{},
	}
	p.ctx, p.cancel = t.Context(), func() {}
	la := &lane{p: p, node: Node{ID: "a"}}
	lb := &lane{p: p, node: Node{ID: "b"}}
	lc := &lane{p: p, node: Node{ID: "c"}}
	pick := func(l *lane) (job, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.pickLocked(l)
	}

	ja, ok := pick(la)
	if !ok || ja.pf.seg.idx != 0 {
		t.Fatalf("a: %v %+v", ok, ja)
	}
	now = now.Add(time.Hour) // a stalled: b hedges segment 0
	jb, ok := pick(lb)
	if !ok || jb.pf.seg.idx != 0 || len(jb.pf.seg.fetchers) != 2 {
		t.Fatalf("b did not hedge segment 0: %v %+v", ok, jb)
	}
	if !p.deliver(jb.pf, jb.off, make([]byte, 1000)) {
		t.Fatal("the hedge's first bytes were refused")
	}
	bad := errors.New("bad block")
	if !p.failed(jb.pf, nil, bad) { // the winner fails...
		t.Fatal("the winner's failure is its own")
	}
	if p.failed(ja.pf, nil, bad) { // ...then the cancelled loser reports
		t.Fatal("the cancelled loser's failure counted as its own")
	}
	if len(p.pending) != 1 {
		t.Fatalf("segment queued %d times: %v", len(p.pending), p.pending)
	}

	jc, ok := pick(lc)
	if !ok || jc.pf.seg.idx != 0 || jc.off != 1000 {
		t.Fatalf("c: %v %+v", ok, jc)
	}
	if !p.deliver(jc.pf, jc.off, make([]byte, seg-1000)) {
		t.Fatal("c's bytes were refused")
	}
	buf := make([]byte, seg)
	for n := 0; n < seg; {
		m, err := p.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	j, ok := func() (j job, ok bool) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("picking after segment 0 was read: %v", r)
			}
		}()
		return pick(lc)
	}()
	if !ok || j.pf.seg.idx != 1 || j.off != 0 {
		t.Fatalf("after segment 0: %v %+v, want segment 1 from 0", ok, j)
	}
}
