package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// testBlocks returns a dag-pb directory block naming n links, and a raw
// block.
func testBlocks(t *testing.T, n int) (dir blocks.Block, raw blocks.Block) {
	t.Helper()
	raw = blocks.NewBlock([]byte("a leaf"))
	rb, err := blocks.NewBlockWithCid([]byte("a leaf"), cid.NewCidV1(cid.Raw, raw.Cid().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	nd := merkledag.NodeWithData([]byte{0x08, 0x01}) // UnixFS directory
	for i := range n {
		if err := nd.AddRawLink(string(rune('a'+i%26))+string(rune('a'+i/26)), &ipld.Link{Cid: rb.Cid(), Size: 6}); err != nil {
			t.Fatal(err)
		}
	}
	return nd, rb
}

// storeForTest opens a store in a temporary directory, with a small-block
// cache of max bytes.
func storeForTest(t *testing.T, max int) (*checkedBlockstore, func(cid.Cid) string) {
	t.Helper()
	dir := t.TempDir()
	ds, bs, cache, err := openStoreCache(dir, nil, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	_ = bs
	n := &Node{cfg: Config{DataDir: dir}}
	return cache, func(c cid.Cid) string { _, p := n.blockFile(c.Hash()); return p }
}

// corrupt overwrites the file of a stored block with other bytes of the
// same length.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xff}, len(b)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory block read once is answered from memory after that, but a
// block deleted from the store (by GC, an unpin, a repair) is never served
// again from memory.
func TestBlockCacheDeleted(t *testing.T) {
	ctx := context.Background()
	bs, path := storeForTest(t, 1<<20)
	dir, raw := testBlocks(t, 3)
	for _, b := range []blocks.Block{dir, raw} {
		if err := bs.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := bs.Get(ctx, dir.Cid())
	if err != nil || !bytes.Equal(got.RawData(), dir.RawData()) {
		t.Fatalf("first read: %v", err)
	}
	// From memory now: the file's damage is not seen (the bytes served
	// were checked against the CID when read).
	corrupt(t, path(dir.Cid()))
	got, err = bs.Get(ctx, dir.Cid())
	if err != nil || !bytes.Equal(got.RawData(), dir.RawData()) || !got.Cid().Equals(dir.Cid()) {
		t.Fatalf("second read of a cached block: %v", err)
	}
	// A read from the disk (the check of a pinned root) sees it.
	if _, err := bs.Get(fromDisk(ctx), dir.Cid()); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("read from disk of a damaged, cached block: %v, want ErrCorruptBlock", err)
	}
	// A raw leaf is not kept: its damage is seen on the next read.
	if _, err := bs.Get(ctx, raw.Cid()); err != nil {
		t.Fatal(err)
	}
	corrupt(t, path(raw.Cid()))
	if _, err := bs.Get(ctx, raw.Cid()); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("damaged raw leaf read: %v, want ErrCorruptBlock", err)
	}
	// Deleted: gone from memory too.
	if err := bs.DeleteBlock(ctx, dir.Cid()); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Get(ctx, dir.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("read after delete: %v, want not found", err)
	}
	// Removed behind the blockstore's back (an import's refused blocks):
	// forget drops it from memory.
	if err := bs.Put(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Get(ctx, dir.Cid()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path(dir.Cid())); err != nil {
		t.Fatal(err)
	}
	bs.forget(dir.Cid().Hash())
	if _, err := bs.Get(ctx, dir.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("read after the file was removed and forgotten: %v, want not found", err)
	}
}

// The cache holds at most its bound, least recently used out first, and
// keeps no block larger than smallBlockMax.
func TestBlockCacheBound(t *testing.T) {
	ctx := context.Background()
	var stored []blocks.Block
	for i := 1; i <= 4; i++ {
		b, _ := testBlocks(t, i)
		stored = append(stored, b)
	}
	bound := len(stored[2].RawData()) + len(stored[3].RawData())
	bs, path := storeForTest(t, bound)
	for _, b := range stored {
		if err := bs.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Get(ctx, b.Cid()); err != nil {
			t.Fatal(err)
		}
	}
	if bs.cache.Bytes() > int64(bound) {
		t.Fatalf("cache holds %d bytes, bound %d", bs.cache.Bytes(), bound)
	}
	// The two read last are in memory, the first two were evicted.
	for i, b := range stored {
		corrupt(t, path(b.Cid()))
		_, err := bs.Get(ctx, b.Cid())
		if i < 2 && !errors.Is(err, ErrCorruptBlock) {
			t.Errorf("block %d: %v, want it read from disk (ErrCorruptBlock)", i, err)
		}
		if i >= 2 && err != nil {
			t.Errorf("block %d: %v, want it from memory", i, err)
		}
	}
	big, _ := testBlocks(t, smallBlockMax/8)
	if len(big.RawData()) <= smallBlockMax {
		t.Fatalf("test block of %d bytes is not over smallBlockMax", len(big.RawData()))
	}
	bs2, _ := storeForTest(t, 1<<20)
	if err := bs2.Put(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, err := bs2.Get(ctx, big.Cid()); err != nil {
		t.Fatal(err)
	}
	if bs2.cache.Bytes() != 0 {
		t.Fatalf("a block of %d bytes was kept", len(big.RawData()))
	}
}
