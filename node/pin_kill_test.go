package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

const (
	pinChildDirEnv  = "VERITY_NODE_PIN_CHILD_DIR"
	pinChildPinEnv  = "VERITY_NODE_PIN_CHILD_PIN" // root + " " + CAR URL
	pinChildTimeout = time.Minute
)

// TestNodePinChild pins for TestPartialPinRemovedAtStart until it is
// killed (or a minute passes).
func TestNodePinChild(t *testing.T) {
	dir := os.Getenv(pinChildDirEnv)
	if dir == "" {
		t.Skip("child of TestPartialPinRemovedAtStart only")
	}
	root, carURL, _ := strings.Cut(os.Getenv(pinChildPinEnv), " ")
	node.SetImportBatchBytes(64 << 10) // store blocks before the stall
	n, err := node.New(node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pinChildTimeout)
	defer cancel()
	fmt.Println("PINNING")
	_ = n.Pin(ctx, nodeproto.Pin{Root: root, CAR: carURL})
}

// A node killed while it fetches a pin has stored some of its blocks
// (they are stored as they stream in) and recorded nothing. The next
// start counts no pin, collects those blocks, counts the disk usage
// again without them (--max-storage), and the pin can be fetched again.
func TestPartialPinRemovedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	car, root := carOf(t, map[string]string{
		"index.html": "<h1>big</h1>",
		"big.bin":    noise(1 << 20), // 4 chunks, all different
	})
	half := len(car) / 2
	sentHalf := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/good.car" {
			w.Write(car)
			return
		}
		// The hostile half: half the CAR, then nothing until the end.
		w.Write(car[:half])
		w.(http.Flusher).Flush()
		select {
		case sentHalf <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	out, kill := startChild(t, "^TestNodePinChild$", pinChildDirEnv+"="+dir, pinChildPinEnv+"="+root.String()+" "+srv.URL+"/stall.car")
	defer kill()
	go io.Copy(io.Discard, bufio.NewReader(out))
	select {
	case <-sentHalf:
	case <-time.After(testutil.Scale(30 * time.Second)):
		t.Fatal("the child never fetched the pin")
	}
	// Wait until blocks of the half are in the store, then kill the child.
	blocksDir := filepath.Join(dir, "blocks")
	testutil.EventuallyErr(t, 10*time.Second, "the child to store blocks of the half it fetched", func() error {
		if n, _ := blockFiles(t, blocksDir); n < 2 {
			return fmt.Errorf("the child stored %d blocks", n)
		}
		return nil
	})
	kill()
	if n, _ := blockFiles(t, blocksDir); n < 2 {
		t.Fatalf("after the kill blocks/ holds %d blocks; the test needs some left there", n)
	}
	tmp := filepath.Join(dir, "tmp")
	if ents, _ := os.ReadDir(tmp); len(ents) == 0 {
		t.Fatal("the killed import left no marker in tmp/")
	}

	n := newNode(t, node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if pins := n.Pins(); len(pins) != 0 {
		t.Fatalf("a killed pin is counted as pinned: %v", pins)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the next start to collect the killed pin's blocks", func() error {
		if files, bytes := blockFiles(t, blocksDir); files != 0 {
			return fmt.Errorf("blocks/ still holds %d blocks (%d bytes) of a killed pin", files, bytes)
		}
		if b := n.Status().Blocks; b != 0 {
			return fmt.Errorf("the node counts %d blocks", b)
		}
		return nil
	})
	if left := staged(t, tmp); left != 0 {
		t.Fatalf("after a restart tmp/ still holds %d bytes", left)
	}
	// The killed pin had stored over 256 KiB; what is left is
	// directories and flatfs's own small files.
	empty := n.Status()
	if empty.Stored > 128<<10 || empty.Blocks != 0 {
		t.Fatalf("after the collection the node counts %d bytes in %d blocks; want no blocks", empty.Stored, empty.Blocks)
	}
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/good.car"}); err != nil {
		t.Fatalf("the pin retried after the restart: %v", err)
	}
	if !has(t, n, root) {
		t.Fatal("the retried pin is not stored")
	}
	_, bytes := blockFiles(t, blocksDir)
	if grew := n.Status().Stored - empty.Stored; grew < bytes || grew > bytes+64<<10 {
		t.Fatalf("the pin grew the stored count by %d bytes; its blocks hold %d", grew, bytes)
	}
}

// blockFiles counts the block files under dir and their bytes.
func blockFiles(t *testing.T, dir string) (files int, bytes int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".data") {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += fi.Size()
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files, bytes
}

// staged is the size of the files in dir.
func staged(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// noise is n bytes that do not repeat: chunks of it are distinct blocks.
func noise(n int) string {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}
