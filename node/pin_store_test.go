package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/node"
)

// serveCAR serves body at every path.
func serveCAR(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/root.car"
}

// siteBlocks is a real site's CAR (internal/importer), its root and its
// blocks in CAR order, with a full 256 KiB leaf.
func siteBlocks(t *testing.T) (full []byte, root, leaf cid.Cid, order []cid.Cid, blocks map[cid.Cid][]byte) {
	t.Helper()
	full, root = carOf(t, map[string]string{
		"index.html": "<h1>site</h1>",
		"big.bin":    strings.Repeat("0123456789abcdef", 48<<10), // 768 KiB: 3 leaves
	})
	br, err := car.NewBlockReader(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	blocks = map[cid.Cid][]byte{}
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := blocks[blk.Cid()]; dup {
			continue // identical leaves are one block
		}
		order = append(order, blk.Cid())
		blocks[blk.Cid()] = blk.RawData()
		if blk.Cid().Prefix().Codec == cid.Raw && len(blk.RawData()) == 256<<10 {
			leaf = blk.Cid()
		}
	}
	if !leaf.Defined() {
		t.Fatal("no full leaf in the site")
	}
	return full, root, leaf, order, blocks
}

// A pin's CAR is checked as it streams in and stored only once whole: a
// CAR with a block that does not match its CID, that lacks a block of
// the DAG, that is cut short inside a block or that announces a block over
// the size limit is refused, nothing is pinned, and none of its blocks is
// stored (nor counted in the stored bytes).
func TestPinStreamedCARRefusedStoresNothing(t *testing.T) {
	_, root, leaf, order, blocks := siteBlocks(t)
	tampered := map[cid.Cid][]byte{}
	for c, b := range blocks {
		tampered[c] = b
	}
	tampered[leaf] = bytes.Clone(blocks[leaf])
	tampered[leaf][7] ^= 1
	var without []cid.Cid
	for _, c := range order {
		if c != leaf {
			without = append(without, c)
		}
	}
	good := writeCARv1(root, order, blocks)
	// A last section announcing a block over the node's limit (2 MiB),
	// with only 1000 bytes of it sent.
	huge := binary.AppendUvarint(bytes.Clone(good), uint64(leaf.ByteLen())+3<<20)
	huge = append(append(huge, leaf.Bytes()...), blocks[leaf][:1000]...)
	for name, body := range map[string][]byte{
		"a block that does not match its CID": writeCARv1(root, order, tampered),
		"a block missing":                     writeCARv1(root, without, blocks),
		"cut short inside a block":            good[:len(good)-100],
		"a block over the size limit":         huge,
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, node.Config{})
			empty := n.Status().Stored
			err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: serveCAR(t, body)})
			if !errors.Is(err, node.ErrBadCAR) || len(n.Pins()) != 0 {
				t.Fatalf("pin: %v, pins %v", err, n.Pins())
			}
			// What is left is the shard directories the import made.
			if left := n.Status().Stored - empty; left < 0 || left > 64<<10 {
				t.Fatalf("after the refusal the node counts %d bytes more than before", left)
			}
			for _, c := range order {
				if has(t, n, c) {
					t.Fatalf("block %s of a refused CAR was stored", c)
				}
			}
		})
	}
}

// Block files are not synced one by one, so a power loss before a pin's
// sync can leave a block's file cut short, unpinned. A later pin of a DAG
// holding that block writes it again instead of taking the file for the
// block (one stat, by size), and the pinned DAG reads back whole.
func TestPinRewritesBlockCutShort(t *testing.T) {
	full, root, leaf, _, blocks := siteBlocks(t)
	n := newNode(t, node.Config{})
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
	p, err := n.BlockPath(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 1000); err != nil {
		t.Fatal(err)
	}
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: serveCAR(t, full)}); err != nil {
		t.Fatal(err)
	}
	for c, want := range blocks {
		blk, err := n.Blockstore().Get(t.Context(), c)
		if err != nil {
			t.Fatalf("pinned block %s: %v", c, err)
		}
		if !bytes.Equal(blk.RawData(), want) {
			t.Fatalf("pinned block %s differs", c)
		}
	}
}

// Two imports may share blocks: the second finds a block the first wrote
// and takes the file for it (one stat, by size). Until the first import
// has synced, that file may live in the page cache only, so the second
// import's pin, acknowledged after its own sync, must have synced it too:
// a power loss meanwhile would otherwise leave an acknowledged pin whose
// block is not on disk.
func TestPinOfBlocksAnotherImportHasNotSyncedSyncsThem(t *testing.T) {
	full, root, leaf, _, blocks := siteBlocks(t)
	n := newNode(t, node.Config{})
	firstAtSync, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	second := make(chan []string, 1)
	n.SetBeforeSyncHook(func(paths []string) {
		switch calls.Add(1) {
		case 1: // the site's import: its files written, not synced
			close(firstAtSync)
			<-release
		case 2:
			second <- paths
		}
	})
	first := make(chan error, 1)
	go func() { first <- n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: serveCAR(t, full)}) }()
	select {
	case <-firstAtSync:
	case err := <-first:
		t.Fatalf("the first pin ended before its sync: %v", err)
	}
	leafCAR := writeCARv1(leaf, []cid.Cid{leaf}, blocks)
	err := n.Pin(t.Context(), nodeproto.Pin{Root: leaf.String(), CAR: serveCAR(t, leafCAR)})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	p, err := n.BlockPath(leaf)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case paths := <-second:
		if !slices.Contains(paths, p) {
			t.Fatalf("the second pin synced %v, not the block file the first import wrote and had not synced (%s)", paths, p)
		}
	default:
		t.Fatal("the second pin made no sync")
	}
}
