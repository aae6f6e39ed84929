package s3api

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// The root a change computes from the previous tree (only the
// directories on its keys' paths rebuilt) is the root of building the
// whole tree again, step after step of random puts, overwrites, folder
// markers and deletes (single and batched), across a directory crossing
// the HAMT threshold both ways and nested directories that appear and
// go. Refused keys (a file where a directory is, and the reverse) are
// refused by the index check and leave the tree as it was.
func TestIncrementalTree(t *testing.T) {
	ctx := context.Background()
	small, smallSize := importFile(t, []byte("x"))
	big, bigSize := importFile(t, []byte(strings.Repeat("verity", 100_000)))
	rng := rand.New(rand.NewPCG(1, 2))
	objs := map[string]*object{}
	root, ds, err := bucketDAG(objs)
	if err != nil {
		t.Fatal(err)
	}
	// 1,010-byte names: about 250 of them cross boxo's 256 KiB threshold.
	longName := func(i int) string { return fmt.Sprintf("big/%01010d", i) }
	keyFor := func() string {
		switch rng.IntN(8) {
		case 0, 1, 5, 6:
			return longName(rng.IntN(320))
		case 2:
			return fmt.Sprintf("a/b%d/c%d.txt", rng.IntN(3), rng.IntN(4))
		case 3:
			return fmt.Sprintf("a/b%d/", rng.IntN(3)) // a folder marker
		case 4:
			return fmt.Sprintf("a/b%d", rng.IntN(3)) // a file where a directory may be
		default:
			return fmt.Sprintf("top%d", rng.IntN(5))
		}
	}
	hamt, basicAgain := false, false
	for step := range 1800 {
		// Grow "big/" past the threshold first, then shrink it below.
		var changes []treeChange
		deleting := rng.IntN(12) == 0
		if step > 900 {
			deleting = rng.IntN(3) != 0
		}
		if deleting && len(objs) > 0 {
			n := 1
			if step > 900 && rng.IntN(10) == 0 {
				n = 1 + rng.IntN(20) // a DeleteObjects batch
			}
			keys := make([]string, 0, len(objs))
			for k := range objs {
				keys = append(keys, k)
			}
			for range n {
				k := keys[rng.IntN(len(keys))]
				if _, ok := objs[k]; ok {
					delete(objs, k)
					changes = append(changes, treeChange{key: k})
				}
			}
		} else {
			k := keyFor()
			if step < 600 && step%2 == 0 {
				k = longName(step / 2) // fill it past the threshold
			}
			o := &object{CID: small.String(), TSize: smallSize}
			if rng.IntN(4) == 0 {
				o = &object{CID: big.String(), TSize: bigSize, Size: 600_000}
			}
			if strings.HasSuffix(k, "/") {
				o = &object{CID: small.String(), TSize: smallSize}
			}
			st := &shardStore{}
			ix := st.view(&bucketRecord{Objects: maps.Clone(objs)})
			fitErr := ix.fits(ctx, k, o.Size)
			trial := maps.Clone(objs)
			trial[k] = o
			if _, treeErr := buildTree(trial); (fitErr == nil) != (treeErr == nil) {
				t.Fatalf("step %d: %q: the index check says %v, the whole tree %v", step, k, fitErr, treeErr)
			}
			if fitErr != nil {
				continue
			}
			objs[k] = o
			changes = append(changes, treeChange{key: k, obj: o})
		}
		e := &treeEdit{ds: ds, has: func(k string) (bool, error) { _, ok := objs[k]; return ok, nil }}
		next, err := e.apply(ctx, root, changes)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want, _, err := bucketDAG(objs)
		if err != nil {
			t.Fatal(err)
		}
		if next != want {
			t.Fatalf("step %d (%d changes, first %q): incremental root %s, whole tree %s", step, len(changes), changes[0].key, next, want)
		}
		root = next
		if top := e.dirNode(root); top != nil {
			if l, _ := e.child(ctx, top, "big"); l != nil {
				if isHAMT(e.dirNode(l.Cid)) {
					hamt = true
				} else if hamt {
					basicAgain = true
				}
			}
		}
		if step%300 == 0 {
			n := 0
			for k := range objs {
				if strings.HasPrefix(k, "big/") {
					n++
				}
			}
			t.Logf("step %d: %d keys in big/, hamt %v", step, n, hamt)
		}
		if step%200 == 0 { // compacting keeps what the root reaches
			ds = ds.compact(root)
		}
	}
	if !hamt || !basicAgain {
		t.Fatalf("the big directory was a HAMT: %v, then basic again: %v", hamt, basicAgain)
	}
	_ = cid.Undef
}
