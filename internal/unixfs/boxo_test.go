//go:build !js

package unixfs

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/verity-cdn/verity/internal/cid"
)

// TestHAMTAgainstBoxo builds HAMTs with boxo and looks every name up (and
// absent names) with this package.
func TestHAMTAgainstBoxo(t *testing.T) {
	ctx := context.Background()
	for _, width := range []int{8, 16, 256} {
		bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
		dserv := merkledag.NewDAGService(blockservice.New(bs, nil))
		sh, err := hamt.NewShard(dserv, width)
		if err != nil {
			t.Fatal(err)
		}
		leaf := merkledag.NodeWithData([]byte("x"))
		if err := dserv.Add(ctx, leaf); err != nil {
			t.Fatal(err)
		}
		const n = 500
		for i := 0; i < n; i++ {
			if err := sh.Set(ctx, fmt.Sprintf("name-%d", i), leaf); err != nil {
				t.Fatal(err)
			}
		}
		root, err := sh.Node()
		if err != nil {
			t.Fatal(err)
		}
		get := func(c cid.CID) (Node, FSNode) {
			b, err := bs.Get(ctx, mustGoCID(t, c))
			if err != nil {
				t.Fatal(err)
			}
			nd, err := DecodeNode(b.RawData())
			if err != nil {
				t.Fatal(err)
			}
			fs, err := DecodeData(nd.Data)
			if err != nil {
				t.Fatal(err)
			}
			return nd, fs
		}
		rc, _, _ := cid.Decode(root.Cid().Bytes())
		lookup := func(name string) (bool, int) {
			nd, fs := get(rc)
			hv := NewHashBits(name)
			for depth := 1; ; depth++ {
				s, err := NewShard(nd, fs)
				if err != nil {
					t.Fatal(err)
				}
				res, lk, err := s.Lookup(name, hv)
				if err != nil {
					t.Fatal(err)
				}
				switch res {
				case Found:
					if string(lk.Hash.Bytes()) != leaf.Cid().KeyString() {
						t.Fatalf("%s: wrong link", name)
					}
					return true, depth
				case NotFound:
					return false, depth
				}
				nd, fs = get(lk.Hash)
			}
		}
		maxDepth := 0
		for i := 0; i < n; i++ {
			ok, d := lookup(fmt.Sprintf("name-%d", i))
			if !ok {
				t.Fatalf("width %d: name-%d not found", width, i)
			}
			maxDepth = max(maxDepth, d)
		}
		for i := 0; i < 100; i++ {
			if ok, _ := lookup(fmt.Sprintf("absent-%d", i)); ok {
				t.Fatalf("absent-%d found", i)
			}
		}
		if maxDepth < 2 {
			t.Fatalf("width %d: HAMT of depth %d does not exercise child shards", width, maxDepth)
		}
	}
}
