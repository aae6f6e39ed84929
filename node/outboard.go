package node

import (
	"context"
	"sync"

	"github.com/verity-cdn/verity/internal/car"
)

// outboards keeps, for one bao16 response, the outboard encodings
// (internal/bao: a block's parents) of the raw BLAKE3 blocks the store
// checked while reading them for it, until the response's BaoWriter takes
// them: each block is then hashed once, by the store's check, which
// computes its parents on the way, instead of a second time by the
// encoder. The check itself is unchanged: a block that does not match its
// CID is refused (ErrCorruptBlock), counted and queued for repair before
// anything of it is kept.
//
// The traversal reads a block just before the CAR writer writes it (boxo
// writes each block as it loads it), so a few entries are enough; a new
// one replaces the oldest, and a block whose outboard is gone is hashed
// by the encoder, as without this.
type outboards struct {
	mu   sync.Mutex
	ents [outboardsKept]outboardEntry
	next int // the entry put replaces
}

var _ car.Outboards = (*outboards)(nil)

type outboardEntry struct {
	digest string
	ob     []byte // never changed once put
}

// outboardsKept is how many outboards a response keeps.
const outboardsKept = 8

// put keeps ob, the outboard of the checked block with BLAKE3 digest
// digest.
func (o *outboards) put(digest, ob []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ents[o.next] = outboardEntry{digest: string(digest), ob: ob}
	o.next = (o.next + 1) % outboardsKept
}

// Outboard implements car.Outboards: it gives the outboard of the block
// with this digest, if kept, and forgets it.
func (o *outboards) Outboard(digest []byte, _ int) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.ents {
		if e := &o.ents[i]; e.ob != nil && e.digest == string(digest) {
			ob := e.ob
			*e = outboardEntry{}
			return ob, true
		}
	}
	return nil, false
}

// outboardsKey is the context key of a response's outboards.
type outboardsKey struct{}

// outboardsFor returns ctx carrying new outboards for a response in the
// block encoding enc, and those outboards; for any encoding but bao16 (or
// bao16-slices),
// ctx and nil.
func outboardsFor(ctx context.Context, enc string) (context.Context, *outboards) {
	if !baoEncoding(enc) {
		return ctx, nil
	}
	o := &outboards{}
	return context.WithValue(ctx, outboardsKey{}, o), o
}

// outboardsFrom returns the outboards ctx carries, or nil.
func outboardsFrom(ctx context.Context) *outboards {
	o, _ := ctx.Value(outboardsKey{}).(*outboards)
	return o
}
