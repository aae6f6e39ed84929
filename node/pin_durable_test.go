package node_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

const pinDoneChildEnv = "VERITY_NODE_PIN_DONE_CHILD" // data dir, root, CAR URL

// TestNodePinDoneChild pins for TestAcknowledgedPinSurvivesKill9, says so
// and waits to be killed (or a minute to pass).
func TestNodePinDoneChild(t *testing.T) {
	f := strings.Fields(os.Getenv(pinDoneChildEnv))
	if len(f) != 3 {
		t.Skip("child of TestAcknowledgedPinSurvivesKill9 only")
	}
	node.SetImportBatchBytes(64 << 10) // several batches, written side by side
	n, err := node.New(node.Config{DataDir: f[0], DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pinChildTimeout)
	defer cancel()
	if err := n.Pin(ctx, nodeproto.Pin{Root: f[1], CAR: f[2]}); err != nil {
		fmt.Println("FAILED", err)
		return
	}
	fmt.Println("PINNED")
	<-ctx.Done()
}

// A pin is acknowledged once its blocks are stored and synced and the
// pin recorded. A node killed with SIGKILL right after, before it could
// save anything more (flatfs's disk usage, the figure of the block files
// the import wrote itself), still holds the pin at the next start, every
// block of it reads back verified, garbage collection takes none of it,
// and the stored bytes --max-storage compares count its blocks.
func TestAcknowledgedPinSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	files := map[string]string{"index.html": "<h1>kept</h1>", "big.bin": noise(3 << 20)}
	for i := range 20 {
		files[fmt.Sprintf("small%02d.txt", i)] = fmt.Sprintf("small file %d", i)
	}
	body, root := carOf(t, files)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()

	dir := t.TempDir()
	out, kill := startChild(t, "^TestNodePinDoneChild$", pinDoneChildEnv+"="+dir+" "+root.String()+" "+srv.URL+"/site.car")
	defer kill()
	said := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); l == "PINNED" || strings.HasPrefix(l, "FAILED") {
				said <- l
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-said:
		if l != "PINNED" {
			t.Fatalf("the child's pin: %s", l)
		}
	case <-time.After(testutil.Scale(30 * time.Second)):
		t.Fatal("the child never pinned")
	}
	kill()

	n := newNode(t, node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if pins := n.Pins(); len(pins) != 1 || pins[0] != root.String() {
		t.Fatalf("after kill -9 the node holds pins %v; want %s", pins, root)
	}
	_, want := carBlocks(t, body)
	checkBlocks := func(when string) {
		t.Helper()
		for c, data := range want {
			blk, err := n.Blockstore().Get(t.Context(), c)
			if err != nil {
				t.Fatalf("%s: block %s of the acknowledged pin: %v", when, c, err)
			}
			if !bytes.Equal(blk.RawData(), data) {
				t.Fatalf("%s: block %s differs", when, c)
			}
		}
	}
	checkBlocks("after kill -9")
	if removed, err := n.GC(t.Context()); err != nil || removed != 0 {
		t.Fatalf("garbage collection after the restart: removed %d, %v", removed, err)
	}
	checkBlocks("after garbage collection")
	_, onDisk := blockFiles(t, filepath.Join(dir, "blocks"))
	slack := int64(4096 * (len(want) + 16)) // directories, flatfs's own files
	if stored := n.Status().Stored; stored < onDisk || stored > onDisk+slack {
		t.Fatalf("the node counts %d stored bytes; its block files hold %d", stored, onDisk)
	}
}

// The stored bytes count the block files an import wrote, across a
// restart, and no more once they are collected.
func TestStoredBytesAcrossRestart(t *testing.T) {
	body, root := carOf(t, map[string]string{"index.html": "<h1>counted</h1>", "big.bin": noise(2 << 20)})
	url := serveCAR(t, body)
	dir := t.TempDir()
	blocksDir := filepath.Join(dir, "blocks")
	cfg := node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}}

	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	empty := n.Status().Stored
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: url}); err != nil {
		n.Close()
		t.Fatal(err)
	}
	_, onDisk := blockFiles(t, blocksDir)
	pinned := n.Status().Stored
	if grew := pinned - empty; grew < onDisk || grew > onDisk+64<<10 {
		n.Close()
		t.Fatalf("the pin grew the stored count by %d bytes; its blocks hold %d", grew, onDisk)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Fatalf("a node closed cleanly left %d files in tmp/", len(ents))
	}

	n = newNode(t, cfg)
	if got := n.Status().Stored; got != pinned {
		t.Fatalf("after a restart the node counts %d stored bytes; before it, %d", got, pinned)
	}
	if _, err := n.Unpin(t.Context(), root.String()); err != nil {
		t.Fatal(err)
	}
	if files, _ := blockFiles(t, blocksDir); files != 0 {
		t.Fatalf("unpinned, blocks/ still holds %d blocks", files)
	}
	if left := n.Status().Stored - empty; left < 0 || left > 64<<10 {
		t.Fatalf("unpinned and collected, the node counts %d bytes more than empty", left)
	}
}
