package node_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	n, err := node.New(node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pinChildTimeout)
	defer cancel()
	fmt.Println("PINNING")
	_ = n.Pin(ctx, nodeproto.Pin{Root: root, CAR: carURL})
}

// A node killed while it fetches a pin leaves the CAR it was staging in
// its tmp/ directory. The next start removes it, and the pin can be
// fetched again.
func TestPartialPinRemovedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	car, root := carOf(t, map[string]string{
		"index.html": "<h1>big</h1>",
		"big.bin":    strings.Repeat("0123456789abcdef", 64<<10), // 1 MiB
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
	cmd := exec.Command(os.Args[0], "-test.run=^TestNodePinChild$", "-test.v")
	cmd.Env = append(os.Environ(), pinChildDirEnv+"="+dir, pinChildPinEnv+"="+root.String()+" "+srv.URL+"/stall.car")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			go io.Copy(io.Discard, out)
			_ = cmd.Wait()
		}
	}
	defer kill()
	go io.Copy(io.Discard, bufio.NewReader(out))
	select {
	case <-sentHalf:
	case <-time.After(testutil.Scale(30 * time.Second)):
		t.Fatal("the child never fetched the pin")
	}
	// Wait until the staged half is on disk, then kill the child.
	tmp := filepath.Join(dir, "tmp")
	testutil.EventuallyErr(t, 10*time.Second, "the child to stage the half it fetched", func() error {
		if n := staged(t, tmp); n < int64(half) {
			return fmt.Errorf("the child staged %d bytes of %d", n, half)
		}
		return nil
	})
	kill()
	if n := staged(t, tmp); n < int64(half) {
		t.Fatalf("after the kill tmp/ holds %d bytes; the attack needs the partial CAR left there", n)
	}

	n := newNode(t, node.Config{DataDir: dir, DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
	if left := staged(t, tmp); left != 0 {
		t.Fatalf("after a restart tmp/ still holds %d bytes of a killed pin", left)
	}
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/good.car"}); err != nil {
		t.Fatalf("the pin retried after the restart: %v", err)
	}
	if !has(t, n, root) {
		t.Fatal("the retried pin is not stored")
	}
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
