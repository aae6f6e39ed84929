package node_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// linkOf returns the CID of the link named name of the dag-pb block c
// stored on n.
func linkOf(t *testing.T, n *node.Node, c cid.Cid, name string) cid.Cid {
	t.Helper()
	blk, err := n.Blockstore().Get(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range nd.Links() {
		if l.Name == name {
			return l.Cid
		}
	}
	t.Fatalf("no link %q", name)
	return cid.Undef
}

// pinnedCounted pins the root of files on a new node from a CAR server
// that counts its fetches; it returns the node, the root, the order (to
// send again) and the count, 1 by then.
func pinnedCounted(t *testing.T, files map[string]string) (*node.Node, cid.Cid, nodeproto.Pin, *int) {
	t.Helper()
	n := newNode(t, node.Config{DataDir: t.TempDir()})
	car, root := carOf(t, files)
	fetches := new(int)
	srv := carServer(t, map[string][]byte{"/site.car": car}, func(*http.Request) { *fetches++ })
	order := nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/site.car"}
	if err := n.Pin(t.Context(), order); err != nil {
		t.Fatal(err)
	}
	return n, root, order, fetches
}

// readable reports whether c is stored on n and matches its CID.
func readable(t *testing.T, n *node.Node, c cid.Cid) bool {
	t.Helper()
	_, err := n.Blockstore().Get(t.Context(), c)
	return err == nil
}

// A pinned root with a block corrupt on disk (the same size, as bit rot
// leaves it; its audit fails with "corrupt block"), whether the root's
// own dag-pb block (read and kept in memory before or not) or a raw
// leaf: a pin order that asks for a check reads
// every block, finds it, and fetches the root again; the block is whole
// after it. (The store keeps a block file of the right size when a block
// is written again, so the check deletes the damaged one first.)
func TestPinCheckRepairsCorruptBlocks(t *testing.T) {
	for _, which := range []string{"root block", "root block served before", "raw leaf"} {
		t.Run(which, func(t *testing.T) {
			n, root, order, fetches := pinnedCounted(t, map[string]string{"index.html": "<h1>checked</h1>", "a.txt": "a"})
			bad := root
			switch which {
			case "raw leaf":
				bad = linkOf(t, n, root, "index.html")
			case "root block served before":
				// Read, so the store keeps it in memory: the check must
				// read the disk all the same.
				linkOf(t, n, root, "index.html")
			}
			corruptBlock(t, n, bad)
			order.Check = true
			if err := n.Pin(t.Context(), order); err != nil || *fetches != 2 || !readable(t, n, bad) {
				t.Fatalf("checked pin: %v, %d fetches, the block whole %v", err, *fetches, readable(t, n, bad))
			}
		})
	}
}

// A pinned root R that contains another pinned root S (a site holding a
// file that is also an S3 object; here a local pin of a subdirectory): a
// block lost below S is found by R's checked order, which does not take
// S as whole, and R is fetched again.
func TestPinCheckWalksPinnedSubRoots(t *testing.T) {
	n, root, order, fetches := pinnedCounted(t, map[string]string{"index.html": "<h1>outer</h1>", "sub/x.txt": "inner file"})
	sub := linkOf(t, n, root, "sub")
	x := linkOf(t, n, sub, "x.txt")
	if err := n.PinLocal(sub); err != nil {
		t.Fatal(err)
	}
	if err := n.Blockstore().DeleteBlock(t.Context(), x); err != nil {
		t.Fatal(err)
	}
	order.Check = true
	if err := n.Pin(t.Context(), order); err != nil || *fetches != 2 || !has(t, n, x) {
		t.Fatalf("checked pin: %v, %d fetches, the block held %v", err, *fetches, has(t, n, x))
	}
}

// A checked order for a pinned root R that lacks a block another import
// (of S) has just written, answered while that import runs: when S is
// then refused, its undo must not take back the block R's answer counted
// on, whether R's check found it stored (walk) or R was fetched again
// and found it there (refetch).
func TestPinCheckKeepsBlocksOfARefusedImport(t *testing.T) {
	t.Run("walk", func(t *testing.T) { checkRacesRefusedImport(t, false) })
	t.Run("refetch", func(t *testing.T) { checkRacesRefusedImport(t, true) })
}

func checkRacesRefusedImport(t *testing.T, refetch bool) {
	node.SetImportBatchBytes(1) // every block written as it is put
	defer node.SetImportBatchBytes(4 << 20)
	n := newNode(t, node.Config{DataDir: t.TempDir()})
	carR, r := carOf(t, map[string]string{"index.html": "shared between the two roots", "a.txt": "a"})
	carS, s := carOf(t, map[string]string{"other.html": "shared between the two roots", "b.txt": "b"})
	srvR := carServer(t, map[string][]byte{"/r.car": carR}, nil)
	orderR := nodeproto.Pin{Root: r.String(), CAR: srvR.URL + "/r.car"}
	if err := n.Pin(t.Context(), orderR); err != nil {
		t.Fatal(err)
	}
	x := linkOf(t, n, r, "index.html")
	if err := n.Blockstore().DeleteBlock(t.Context(), x); err != nil {
		t.Fatal(err)
	}
	if refetch {
		// R lacks a block of its own too: its check fetches R again.
		if err := n.Blockstore().DeleteBlock(t.Context(), linkOf(t, n, r, "a.txt")); err != nil {
			t.Fatal(err)
		}
	}
	// S's CAR: every block, then, once released, garbage.
	sent, fail := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(fail) }) }
	srvS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(carS)
		w.(http.Flusher).Flush()
		close(sent)
		<-fail
		w.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	}))
	defer srvS.Close()
	defer release() // before Close, which waits for the handler
	errS := make(chan error, 1)
	go func() { errS <- n.Pin(t.Context(), nodeproto.Pin{Root: s.String(), CAR: srvS.URL + "/s.car"}) }()
	<-sent
	testutil.Eventually(t, 5*time.Second, "S's import stored the shared block", func() bool { return has(t, n, x) })
	orderR.Check = true
	if err := n.Pin(t.Context(), orderR); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-errS; err == nil {
		t.Fatal("S's import was not refused")
	}
	if !has(t, n, x) {
		t.Fatalf("the block R's answer counted on (%s) was taken back by S's refused import", x)
	}
}

// A pinned root that lost a block (here its root block) is fetched again
// by an order that asks for a check (nodeproto.Pin.Check: the coordinator
// no longer counts the node as a holder, after a failed audit), and only
// by one: an order without it is answered at once, as every order a node
// gets for its pins after it rejoins is.
func TestPinCheckFetchesLostBlocks(t *testing.T) {
	n, root, order, fetches := pinnedCounted(t, map[string]string{"index.html": "<h1>checked</h1>", "a.txt": "a"})
	// Checked and whole: not fetched again.
	order.Check = true
	if err := n.Pin(t.Context(), order); err != nil || *fetches != 1 {
		t.Fatalf("checked pin of a whole root: %v, %d fetches", err, *fetches)
	}
	if err := n.Blockstore().DeleteBlock(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	order.Check = false
	if err := n.Pin(t.Context(), order); err != nil || *fetches != 1 || has(t, n, root) {
		t.Fatalf("unchecked pin: %v, %d fetches, root block held %v", err, *fetches, has(t, n, root))
	}
	order.Check = true
	if err := n.Pin(t.Context(), order); err != nil || *fetches != 2 || !has(t, n, root) {
		t.Fatalf("checked pin of a root missing a block: %v, %d fetches, root block held %v", err, *fetches, has(t, n, root))
	}
	if got := n.Pins(); !slices.Equal(got, []string{root.String()}) {
		t.Fatalf("pins %v", got)
	}
}
