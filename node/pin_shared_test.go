package node_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// carBlocks lists a CAR's blocks in order.
func carBlocks(t *testing.T, full []byte) (order []cid.Cid, blocks map[cid.Cid][]byte) {
	t.Helper()
	br, err := car.NewBlockReader(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	blocks = map[cid.Cid][]byte{}
	for {
		blk, err := br.Next()
		if err == io.EOF {
			return order, blocks
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := blocks[blk.Cid()]; !dup {
			order = append(order, blk.Cid())
			blocks[blk.Cid()] = blk.RawData()
		}
	}
}

// stallingCAR serves head, then, once release is closed, tail.
func stallingCAR(t *testing.T, head, tail []byte, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(head)
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write(tail)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/site.car"
}

// Blocks are stored as a pin's CAR streams in, before the CAR is known
// to be good. Two sites share a file; the pin of one is refused at its
// end (a block the DAG does not reach) after it stored the shared
// blocks. The refusal deletes the blocks only it brought, and leaves the
// shared ones to the other pin, whether that pin is still streaming
// (it found them stored and skipped them) or already recorded. Alone, the
// refused pin leaves nothing.
func TestPinRefusedSparesBlocksOfConcurrentPin(t *testing.T) {
	node.SetImportBatchBytes(64 << 10) // store each leaf as it arrives
	t.Cleanup(func() { node.SetImportBatchBytes(16 << 20) })
	shared := noise(1 << 20)
	carA, rootA := carOf(t, map[string]string{"index.html": "<h1>A</h1>", "shared.bin": shared})
	carB, rootB := carOf(t, map[string]string{"index.html": "<h1>B</h1>", "shared.bin": shared})
	orderA, blocksA := carBlocks(t, carA)
	orderB, blocksB := carBlocks(t, carB)
	var sharedLeaves, onlyA []cid.Cid
	for _, c := range orderA {
		if _, ok := blocksB[c]; !ok {
			onlyA = append(onlyA, c)
		} else if len(blocksA[c]) == 256<<10 {
			sharedLeaves = append(sharedLeaves, c)
		}
	}
	if len(sharedLeaves) != 4 || len(onlyA) == 0 {
		t.Fatalf("%d shared leaves, %d blocks only in A", len(sharedLeaves), len(onlyA))
	}
	// A's CAR: its whole DAG, then (after a stall) a block it does not reach.
	extraData := []byte("not part of the DAG")
	mh, err := multihash.Sum(extraData, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	extra := cid.NewCidV1(cid.Raw, mh)
	blocksA[extra] = extraData
	headA := writeCARv1(rootA, orderA, blocksA)
	tailA := writeCARv1(rootA, append(orderA, extra), blocksA)[len(headA):]
	// B's CAR: all but its last block, then (after a stall) the last.
	headB := writeCARv1(rootB, orderB[:len(orderB)-1], blocksB)
	tailB := carB[len(headB):]
	if !bytes.Equal(writeCARv1(rootB, orderB, blocksB), carB) {
		t.Fatal("writeCARv1 does not rebuild B's CAR")
	}

	// pinA starts A's pin, waits until it stored the shared leaves, and
	// returns its outcome, known once release is closed.
	pinA := func(t *testing.T, n *node.Node, release chan struct{}) <-chan error {
		url := stallingCAR(t, headA, tailA, release)
		done := make(chan error, 1)
		go func() { done <- n.Pin(t.Context(), nodeproto.Pin{Root: rootA.String(), CAR: url}) }()
		testutil.Eventually(t, 10*time.Second, "A to store the shared leaves", func() bool {
			for _, c := range sharedLeaves {
				if ok, _ := n.Has(t.Context(), c); !ok {
					return false
				}
			}
			return true
		})
		return done
	}
	refused := func(t *testing.T, n *node.Node, done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			if !errors.Is(err, node.ErrBadCAR) {
				t.Fatalf("A's pin: %v; want it refused", err)
			}
		case <-time.After(testutil.Scale(10 * time.Second)):
			t.Fatal("A's pin never ended")
		}
		for _, c := range onlyA {
			if has(t, n, c) {
				t.Fatalf("block %s, which only the refused CAR brought, is still stored", c)
			}
		}
	}
	// pinnedB checks B is pinned and whole, and nothing of A is left.
	pinnedB := func(t *testing.T, n *node.Node) {
		t.Helper()
		if pins := n.Pins(); len(pins) != 1 || pins[0] != rootB.String() {
			t.Fatalf("pins %v; want B's only", pins)
		}
		for _, c := range orderB {
			if !has(t, n, c) {
				t.Fatalf("block %s of the pinned site was deleted", c)
			}
		}
		removed, err := n.GC(t.Context())
		if err != nil || removed != 0 {
			t.Fatalf("GC after the refusal: removed %d, %v; want nothing left to remove", removed, err)
		}
	}

	t.Run("alone", func(t *testing.T) {
		n := newNode(t, node.Config{})
		release := make(chan struct{})
		done := pinA(t, n, release)
		close(release)
		refused(t, n, done)
		for _, c := range orderA {
			if has(t, n, c) {
				t.Fatalf("block %s of the refused CAR is still stored", c)
			}
		}
		if st := n.Status(); st.Blocks != 0 {
			t.Fatalf("the node counts %d blocks", st.Blocks)
		}
	})

	t.Run("while the other streams", func(t *testing.T) {
		n := newNode(t, node.Config{})
		releaseA, releaseB := make(chan struct{}), make(chan struct{})
		doneA := pinA(t, n, releaseA)
		urlB := stallingCAR(t, headB, tailB, releaseB)
		doneB := make(chan error, 1)
		go func() { doneB <- n.Pin(t.Context(), nodeproto.Pin{Root: rootB.String(), CAR: urlB}) }()
		testutil.Eventually(t, 10*time.Second, "B to take the shared leaves A stored", func() bool {
			for _, c := range sharedLeaves {
				if n.ClaimsForTest(c) < 2 {
					return false
				}
			}
			return true
		})
		close(releaseA)
		refused(t, n, doneA)
		close(releaseB)
		select {
		case err := <-doneB:
			if err != nil {
				t.Fatalf("B's pin: %v", err)
			}
		case <-time.After(testutil.Scale(10 * time.Second)):
			t.Fatal("B's pin never ended")
		}
		pinnedB(t, n)
	})

	t.Run("after the other is recorded", func(t *testing.T) {
		n := newNode(t, node.Config{})
		releaseA := make(chan struct{})
		doneA := pinA(t, n, releaseA)
		if err := n.Pin(t.Context(), nodeproto.Pin{Root: rootB.String(), CAR: serveCAR(t, carB)}); err != nil {
			t.Fatalf("B's pin: %v", err)
		}
		close(releaseA)
		refused(t, n, doneA)
		pinnedB(t, n)
	})
}
