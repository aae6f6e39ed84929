package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// The store's filesystem fails the writeback of a pin's block files (EIO:
// a loop device whose backing tmpfs is full, set up by
// testdata/eio-setup.sh inside a mount namespace of its own). Another
// syncfs of the same filesystem (another import's sync, a repair's, any
// process's) runs first and reports the error. The pin's own sync must
// still report it, and the pin be refused: syncfs(2) reports the errors
// since the file it is given was opened, and only those no other syncfs
// reported before that, so the node opens the directory it syncs before
// it writes.
//
// It needs root, unshare, losetup and mkfs.ext4; without them it is
// skipped, saying so.
func TestPinWritebackEIORefused(t *testing.T) {
	dir, fill := os.Getenv("VERITY_EIO_DIR"), os.Getenv("VERITY_EIO_FILL")
	if dir == "" {
		eioInNamespace(t)
		return
	}
	files := map[string]string{}
	for i := range 64 {
		files[fmt.Sprintf("f%02d.txt", i)] = noise(1000 + i) // small blocks: written through the page cache
	}
	full, root := carOf(t, files)
	n := newNode(t, node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	syncfs := func() error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return unix.Syncfs(int(d.Fd()))
	}
	if err := syncfs(); err != nil {
		t.Fatalf("syncfs before the pin: %v", err)
	}
	// Fill the tmpfs under the loop device: every later writeback fails.
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	var other atomic.Value
	n.SetBeforeSyncHook(func(paths []string) {
		err := syncfs() // another sync of the filesystem, first
		other.Store(fmt.Sprint(err))
		os.Remove(fill) // the fault passes (a transient error, a bad sector): later writes succeed
	})
	err = n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: serveCAR(t, full)})
	t.Logf("the other syncfs got: %v; the pin got: %v", other.Load(), err)
	if err == nil {
		st, _ := os.Stat(filepath.Join(dir, "pins.json"))
		t.Fatalf("pin acknowledged (pins.json %v bytes) although the writeback of its block files failed (the other syncfs got %v)", st.Size(), other.Load())
	}
}

// eioInNamespace runs the calling test again in a child of this test
// binary, inside unshare -m with testdata/eio-setup.sh's filesystem, and
// fails when the child does; it skips when the filesystem cannot be set
// up here.
func eioInNamespace(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop device")
	}
	for _, tool := range []string{"unshare", "losetup", "mkfs.ext4", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "eio-setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(2*time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "bash", script, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	out, err := cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("EIO-SETUP-OK")) {
		t.Skipf("the failing filesystem could not be set up here (%v):\n%s", err, out)
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("in the failing filesystem: %v\n%s", err, out)
	}
	t.Logf("in the failing filesystem:\n%s", out)
}
