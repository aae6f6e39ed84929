package node_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// A --car file cut at a section boundary (a partial copy) parses as a
// valid CAR. ImportCAR refuses it: otherwise its root would be pinned
// locally (verity node --car: ImportCAR then PinLocal) with blocks
// missing, and every later garbage collection would fail on the missing
// block.
func TestImportCARCutAtBlockBoundaryRefused(t *testing.T) {
	full, root := carOf(t, map[string]string{"index.html": "<h1>x</h1>", "big.bin": noise(1 << 20)})
	order, blocks := carBlocks(t, full)
	cut := writeCARv1(root, order[:len(order)-1], blocks)
	if !bytes.HasPrefix(full, cut) {
		t.Fatal("the cut CAR is not a prefix of the full one")
	}
	lost := order[len(order)-1]
	n := newNode(t, node.Config{})
	roots, err := n.ImportCAR(t.Context(), bytes.NewReader(cut))
	if err != nil {
		return // refused: fine
	}
	if err := n.PinLocal(roots...); err != nil {
		t.Fatal(err)
	}
	_, gcErr := n.GC(t.Context())
	t.Fatalf("ImportCAR accepted a CAR cut at a block boundary: root %s pinned locally without block %s (stored: %v); GC now fails: %v",
		root, lost, has(t, n, lost), gcErr)
}

// A partial pin whose sub-DAG cannot be fetched (the gateway answers an
// error) is refused whole: the directory blocks it stored are deleted
// again, as for any refused import.
func TestPartialPinRefusedWhole(t *testing.T) {
	_, a := fileCAR(t, "object a, never served")
	dCAR, d := dirCAR(t, map[string]cid.Cid{"a.txt": a})
	srv := carServer(t, map[string][]byte{"/v1/content/" + d.String() + ".car": dCAR}, nil) // a's CAR: 404
	n := newNode(t, node.Config{})
	err := n.Pin(t.Context(), nodeproto.Pin{Root: d.String(), CAR: srv.URL + "/v1/content/" + d.String() + ".car", Partial: true})
	if err == nil {
		t.Fatal("pinned a partial root whose object cannot be fetched")
	}
	if has(t, n, d) {
		t.Fatalf("the refused partial pin (%v) left its directory block %s stored", err, d)
	}
}

const carImportChildDirEnv = "VERITY_NODE_CAR_IMPORT_CHILD_DIR"

// TestCarImportChild imports a CAR (the file named by the env) the
// way verity node --car does, and stops at its sync until it is killed.
func TestCarImportChild(t *testing.T) {
	dir := os.Getenv(carImportChildDirEnv)
	if dir == "" {
		t.Skip("child of TestCarReimportAfterKill9 only")
	}
	n, err := node.New(node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	n.SetBeforeSyncHook(func([]string) {
		fmt.Println("AT SYNC")
		select {}
	})
	f, err := os.Open(filepath.Join(dir, "site.car"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = n.ImportCAR(context.Background(), f)
}

// verity node --car FILE killed (-9) in its import, then started again
// with the same --car: New collects what the killed import left (in the
// background), and the new import of the same CAR, which finds the block
// files there and takes them (one stat), waits for that collection;
// otherwise the collection deletes them and PinLocal records a root whose
// blocks are gone.
func TestCarReimportAfterKill9(t *testing.T) {
	full, root := carOf(t, map[string]string{"index.html": "<h1>x</h1>", "big.bin": noise(1 << 20)})
	order, _ := carBlocks(t, full)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.car"), full, 0o644); err != nil {
		t.Fatal(err)
	}
	out, kill := startChild(t, "^TestCarImportChild$", carImportChildDirEnv+"="+dir)
	defer kill()
	sc := bufio.NewScanner(out)
	atSync := make(chan struct{})
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "AT SYNC") {
				close(atSync)
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case <-atSync:
	case <-time.After(testutil.Scale(30 * time.Second)):
		t.Fatal("the child never reached its sync")
	}
	kill()

	// The restart, as cmd/verity's node command does it: New, then
	// importCARFile (ImportCAR, PinLocal) for each --car.
	n := newNode(t, node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	n.SetBeforeSyncHook(func([]string) {
		// Give the leftover collection its chance to run meanwhile.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			for _, c := range order {
				if ok, _ := n.Has(context.Background(), c); !ok {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	f, err := os.Open(filepath.Join(dir, "site.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	roots, err := n.ImportCAR(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PinLocal(roots...); err != nil {
		t.Fatal(err)
	}
	_, gcErr := n.GC(t.Context()) // after the leftover collection
	for _, c := range order {
		if !has(t, n, c) {
			t.Fatalf("root %s imported and pinned locally, but its block %s is gone (GC now: %v)", root, c, gcErr)
		}
	}
}
