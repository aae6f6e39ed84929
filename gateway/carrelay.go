package gateway

import (
	"bytes"
	"fmt"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// carTee stands between a node's CAR response and the verify.Reader that
// checks it: it hands the verifier the stream section by section
// (re-encoded), and keeps each section until the verifier has accepted
// it. What comes out of take is therefore verified, in stream order, and
// is what the CAR fallback relays: a node's bytes reach a client only
// once internal/verify has checked them.
type carTee struct {
	src  *nodeCall
	cr   *car.Reader // the node's stream; nil until the header is read
	feed bytes.Buffer
	fed  []carSection // given to the verifier, not verified yet
	done []carSection // verified, not taken yet
	// drop is how many verified sections to discard before keeping any:
	// a resume from another node skips what the client already has.
	drop   int
	roots  []cid.CID
	err    error // sticky error of the node's stream
	broken bool  // the verifier and the tee disagree: relay nothing more
}

// carSection is one block of a CAR stream.
type carSection struct {
	c    cid.CID
	data []byte
}

func newCARTee(src *nodeCall, drop int) *carTee { return &carTee{src: src, drop: drop} }

// Read feeds the verifier.
func (t *carTee) Read(p []byte) (int, error) {
	for t.feed.Len() == 0 {
		if t.err != nil {
			return 0, t.err
		}
		if t.cr == nil {
			cr, err := car.NewReader(t.src, car.Config{MaxSectionSize: verify.DefaultMaxBlockSize + 256})
			if err != nil {
				t.err = err
				continue
			}
			t.cr, t.roots = cr, cr.Roots()
			if _, err := car.NewWriter(&t.feed, t.roots); err != nil {
				return 0, err
			}
			continue
		}
		c, data, err := t.cr.Next()
		if err != nil {
			t.err = err // io.EOF too: the verifier sees the end of the stream
			continue
		}
		t.fed = append(t.fed, carSection{c, data})
		if err := car.NewBlockWriter(&t.feed).Put(c, data); err != nil {
			return 0, err
		}
	}
	return t.feed.Read(p)
}

// verified is the verifier's OnBlock: the oldest section fed is verified.
func (t *carTee) verified(c cid.CID) {
	if len(t.fed) == 0 || !t.fed[0].c.Equal(c) {
		// Cannot happen: the verifier reads only what was fed, in order.
		// Should it, nothing more is relayed from this stream.
		t.err = fmt.Errorf("gateway: verified %s, which was not fed next", c)
		t.fed, t.done, t.broken = nil, nil, true
		return
	}
	if t.broken {
		return
	}
	s := t.fed[0]
	t.fed = t.fed[1:]
	if t.drop > 0 {
		t.drop--
		return
	}
	t.done = append(t.done, s)
}

// take returns the sections verified since the last take.
func (t *carTee) take() []carSection {
	out := t.done
	t.done = nil
	return out
}

// heldBytes is the size of the verified sections not taken yet.
func (t *carTee) heldBytes() int {
	n := 0
	for _, s := range t.done {
		n += len(s.data)
	}
	return n
}

// sameRoots reports whether the CAR header names roots.
func (t *carTee) sameRoots(roots []cid.CID) bool {
	if len(t.roots) != len(roots) {
		return false
	}
	for i := range roots {
		if !t.roots[i].Equal(roots[i]) {
			return false
		}
	}
	return true
}
