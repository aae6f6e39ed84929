package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	"github.com/multiformats/go-multihash"
)

// An import stores each block as it streams in, before the CAR is known
// to be good (its end decides: nothing missing, nothing extra). So each
// attempt at an import is an importRun, which remembers the blocks it
// wrote itself; when the CAR is refused, undo deletes those no one else
// needs, and the disk is as before the attempt.
//
// Two imports may share blocks: the first writes a block, the second
// finds it stored and skips it. If the first is then refused, the block
// must stay for the second. So every run claims, in Node.claims, each
// block it streams, before it looks whether the block is stored, and
// keeps its claims until its pin is recorded (release). undo, under the
// same lock, spares a block another run claims, and a block reachable
// from a pin recorded since the run began (a run that claimed it has
// finished): such a pin can only have been recorded after this run wrote
// the block, so when no pin was recorded meanwhile (pinSeq), there is
// nothing to walk.
//
// A run that writes leaves a marker file in DataDir/tmp until it is
// released; a node killed meanwhile finds it at the next start and
// collects garbage then (New), which removes what the run had written.

// importRun is one attempt at importing a CAR.
type importRun struct {
	n       *Node
	pinSeq  uint64              // n.pinSeq when the run began
	claimed map[string]struct{} // multihashes claimed in n.claims
	fresh   []multihash.Multihash
	marker  string // the file in DataDir/tmp, once the run writes
	keep    bool   // undo failed: leave the marker for the next start
}

// newImportRun starts a run; the caller releases it.
func (n *Node) newImportRun() *importRun {
	return &importRun{n: n, pinSeq: n.pinSeq.Load(), claimed: make(map[string]struct{})}
}

// claim marks the block mh as needed by this run. Called before the run
// looks whether the block is stored.
func (r *importRun) claim(mh multihash.Multihash) {
	k := string(mh)
	if _, ok := r.claimed[k]; ok {
		return
	}
	r.claimed[k] = struct{}{}
	r.n.claimMu.Lock()
	r.n.claims[k]++
	r.n.claimMu.Unlock()
}

// wrote records that this run wrote the block mh (it was not stored).
func (r *importRun) wrote(mh multihash.Multihash) error {
	if r.marker == "" {
		f, err := os.CreateTemp(filepath.Join(r.n.cfg.DataDir, tmpDir), "import-*.run")
		if err != nil {
			return fmt.Errorf("node: import: %w", err)
		}
		f.Close()
		r.marker = f.Name()
		// The marker's name is made durable before the run's first
		// block file: a power cut can leave a block file of the right
		// size holding zeros, and only a marker that survives has the
		// next start collect it before an import takes it by its size.
		if err := syncPath(filepath.Dir(r.marker)); err != nil {
			return fmt.Errorf("node: import: %w", err)
		}
	}
	r.fresh = append(r.fresh, mh)
	return nil
}

// release drops the run's claims (after its pin is recorded, or after
// undo) and its marker. It may be called more than once.
func (r *importRun) release() {
	if r == nil {
		return
	}
	r.n.claimMu.Lock()
	for k := range r.claimed {
		if r.n.claims[k]--; r.n.claims[k] <= 0 {
			delete(r.n.claims, k)
		}
	}
	r.n.claimMu.Unlock()
	clear(r.claimed)
	if r.marker != "" && !r.keep {
		os.Remove(r.marker)
		r.marker = ""
	}
}

// undo deletes the blocks the run wrote that no other run claims and no
// pin reaches, and returns how many it deleted. On an error it deletes
// nothing more and keeps the marker, so the next start collects them.
func (r *importRun) undo(ctx context.Context) (int, error) {
	if len(r.fresh) == 0 {
		return 0, nil
	}
	ctx = context.WithoutCancel(ctx) // an abandoned pin is undone too
	n := r.n
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	var live map[string]bool
	if n.pinSeq.Load() != r.pinSeq {
		var err error
		if live, err = n.liveSet(ctx); err != nil {
			r.keep = true
			return 0, err
		}
	}
	removed := 0
	for _, mh := range r.fresh {
		k := string(mh)
		if n.claims[k] > 1 || live[k] {
			continue // claimed by this run and another, or pinned
		}
		n.checked.forget(mh)
		if err := n.ds.Delete(ctx, dshelp.MultihashToDsKey(mh)); err != nil {
			r.keep = true
			return removed, fmt.Errorf("node: import: remove a refused block: %w", err)
		}
		removed++
	}
	r.fresh = nil
	return removed, nil
}
