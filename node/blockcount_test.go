package node_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// blocksWhenCounted waits for the background block count and returns the
// blocks gauge.
func blocksWhenCounted(t *testing.T, n *node.Node) int64 {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the blocks counted", n.BlocksCounted)
	return n.Status().Blocks
}

// A restarted node counts its store in the background; an import made
// while it counts is neither missed nor counted twice, and a collection
// after it takes its blocks off again.
func TestBlockCountInBackground(t *testing.T) {
	f := buildFixture(t)
	other, _ := carOf(t, map[string]string{"x.txt": "another root", "y.txt": "and another block"})

	fresh := newNode(t, node.Config{})
	if _, err := fresh.ImportCAR(t.Context(), bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	m := blocksWhenCounted(t, fresh)

	dir := t.TempDir()
	n1 := newNode(t, node.Config{DataDir: dir})
	if got := blocksWhenCounted(t, n1); got != 0 {
		t.Fatalf("empty store: %d blocks", got)
	}
	if _, err := n1.ImportCAR(t.Context(), bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	k := int64(len(f.blocks))
	if got := n1.Status().Blocks; got != k {
		t.Fatalf("after import: %d blocks, want %d", got, k)
	}
	n1.Close()

	n2 := newNode(t, node.Config{DataDir: dir})
	if _, err := n2.ImportCAR(t.Context(), bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	if got := blocksWhenCounted(t, n2); got != k+m {
		t.Fatalf("restarted with %d blocks, imported %d more: gauge %d", k, m, got)
	}
	removed, err := n2.GC(t.Context()) // nothing is pinned: everything goes
	if err != nil || int64(removed) != k+m {
		t.Fatalf("GC removed %d: %v", removed, err)
	}
	if got := n2.Status().Blocks; got != 0 {
		t.Fatalf("after GC: %d blocks", got)
	}
}
