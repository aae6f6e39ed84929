package node_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// carOf imports files (names may hold directories: "sub/x.txt") and
// returns the CAR and its root.
func carOf(t *testing.T, files map[string]string) ([]byte, cid.Cid) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), dir, &buf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), root
}

// carServer serves cars by path (404 for any other) until the test ends,
// calling seen, when set, with each request.
func carServer(t *testing.T, cars map[string][]byte, seen func(*http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen(r)
		}
		b, ok := cars[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func has(t *testing.T, n *node.Node, c cid.Cid) bool {
	t.Helper()
	ok, err := n.Has(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// Placed pins are fetched with a signed GET and verified; GC removes only
// blocks no pinned root reaches; Reconcile drops pins no longer placed,
// never local ones.
func TestPinGCReconcile(t *testing.T) {
	n := newNode(t, node.Config{DataDir: t.TempDir()})
	placed, placedRoot := carOf(t, map[string]string{"index.html": "<h1>placed</h1>", "shared.txt": "shared"})
	local, localRoot := carOf(t, map[string]string{"index.html": "<h1>local</h1>", "shared.txt": "shared"})
	junk, junkRoot := carOf(t, map[string]string{"junk.txt": "unpinned"})
	var auth []string
	srv := carServer(t, map[string][]byte{"/placed.car": placed, "/junk.car": junk}, func(r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
	})

	if err := n.Pin(t.Context(), nodeproto.Pin{Root: placedRoot.String(), CAR: srv.URL + "/placed.car"}); err != nil {
		t.Fatal(err)
	}
	if len(auth) != 1 || !strings.HasPrefix(auth[0], nodeproto.ContentAuthScheme+" "+n.ID()+":") {
		t.Fatalf("fetch not signed by the node: %q", auth)
	}
	// Already pinned: not fetched again.
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: placedRoot.String(), CAR: srv.URL + "/placed.car"}); err != nil || len(auth) != 1 {
		t.Fatalf("second pin: %v, %d fetches", err, len(auth))
	}
	// A CAR whose root is not the order's is refused and not pinned.
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: localRoot.String(), CAR: srv.URL + "/junk.car"}); err == nil {
		t.Fatal("pinned a CAR with another root")
	}
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: localRoot.String(), CAR: srv.URL + "/missing.car"}); err == nil {
		t.Fatal("pinned after a 404")
	}
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(local)); err != nil {
		t.Fatal(err)
	}
	if err := n.PinLocal(localRoot); err != nil {
		t.Fatal(err)
	}
	if has(t, n, junkRoot) {
		t.Fatal("the refused pin's CAR was stored")
	}
	// Blocks no root reaches: an import nobody pinned.
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(junk)); err != nil {
		t.Fatal(err)
	}

	removed, err := n.GC(t.Context())
	if err != nil || removed != 2 { // junk's directory and its one leaf
		t.Fatalf("GC removed %d: %v", removed, err)
	}
	if has(t, n, junkRoot) || !has(t, n, placedRoot) || !has(t, n, localRoot) {
		t.Fatal("GC removed the wrong blocks")
	}
	if got := n.Pins(); !slices.Equal(got, []string{placedRoot.String()}) {
		t.Fatalf("pins %v", got)
	}

	// The coordinator no longer places anything here: the placed root goes,
	// the local one and the block they share stay.
	unpinned, removed, err := n.Reconcile(t.Context(), func(string) bool { return false })
	if err != nil || unpinned != 1 || removed != 2 { // placed's directory and index.html
		t.Fatalf("Reconcile: unpinned %d removed %d: %v", unpinned, removed, err)
	}
	if has(t, n, placedRoot) || !has(t, n, localRoot) || len(n.Pins()) != 0 {
		t.Fatal("Reconcile kept the unplaced root or dropped the local one")
	}
	// Pins survive a restart.
	dir := n.DataDir()
	n.Close()
	n2 := newNode(t, node.Config{DataDir: dir})
	if removed, err := n2.GC(t.Context()); err != nil || removed != 0 || !has(t, n2, localRoot) {
		t.Fatalf("GC after restart removed %d: %v", removed, err)
	}
}

// The coordinator's placed list is a snapshot taken as the node is
// welcomed; a pin order for a root placed meanwhile can reach the node
// before it (or be handled after it). Such a root is placed all the same:
// the node keeps it and its blocks, and drops only what neither the list
// nor an order of the session names.
func TestPinOrderCrossingPlacedListKept(t *testing.T) {
	old, oldRoot := carOf(t, map[string]string{"index.html": "<h1>no longer placed</h1>"})
	fresh, freshRoot := carOf(t, map[string]string{"index.html": "<h1>placed now</h1>", "app.js": "run()"})
	srv := carServer(t, map[string][]byte{"/old.car": old, "/fresh.car": fresh}, nil)
	f := newFakeCoord(t)
	n := newNode(t, node.Config{Coordinator: f.srv.URL})
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: oldRoot.String(), CAR: srv.URL + "/old.car"}); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	c := f.accept()
	c.join("coord-1", time.Minute)

	c.send(nodeproto.Message{Type: nodeproto.MsgPin, Pin: &nodeproto.Pin{Root: freshRoot.String(), CAR: srv.URL + "/fresh.car"}})
	if m := c.read(); m.Type != nodeproto.MsgPinned || m.Pinned.Root != freshRoot.String() || m.Pinned.Error != "" {
		t.Fatalf("pin answered %+v", m)
	}
	c.send(nodeproto.Message{Type: nodeproto.MsgPlaced, Placed: &nodeproto.Placed{Roots: []string{}}})
	waitUntil(t, "the unplaced root dropped", func() bool { return !slices.Contains(n.Pins(), oldRoot.String()) })
	testutil.Eventually(t, 10*time.Second, "the old root's blocks collected", func() bool { return !has(t, n, oldRoot) })
	if !slices.Equal(n.Pins(), []string{freshRoot.String()}) || !has(t, n, freshRoot) {
		t.Fatalf("the root ordered in this session was dropped: pins %v", n.Pins())
	}
}

// A root unplaced then placed again on the node (the collector unplaced
// it as a store recorded a reference to it, and the store placed it
// again: coordinator/collect.go) reaches the node as an unpin then a pin
// order, each handled on a goroutine of its own. When the pin runs first
// it finds the root still pinned and answers pinned at once; the unpin
// that runs after it must not then drop the root and its blocks, or the
// coordinator counts a holder that holds nothing (and an S3 object is
// acknowledged on nodes that deleted it).
func TestUnpinOvertakenByPinOrderKeepsRoot(t *testing.T) {
	car, root := carOf(t, map[string]string{"object.bin": strings.Repeat("kept ", 1000)})
	srv := carServer(t, map[string][]byte{"/o.car": car}, nil)
	f := newFakeCoord(t)
	n := newNode(t, node.Config{Coordinator: f.srv.URL})
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/o.car"}); err != nil {
		t.Fatal(err)
	}
	release, done := make(chan struct{}), make(chan struct{})
	n.SetUnpinHook(func(r string, unpin func()) {
		<-release // until the pin order that came after it has been answered
		unpin()
		close(done)
	})
	runNode(t, n)
	c := f.accept()
	c.join("coord-1", time.Minute)
	c.send(nodeproto.Message{Type: nodeproto.MsgUnpin, Unpin: &nodeproto.Unpin{Root: root.String()}})
	c.send(nodeproto.Message{Type: nodeproto.MsgPin, Pin: &nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/o.car"}})
	if m := c.read(); m.Type != nodeproto.MsgPinned || m.Pinned.Root != root.String() || m.Pinned.Error != "" {
		t.Fatalf("pin answered %+v", m)
	}
	close(release)
	<-done
	if !slices.Contains(n.Pins(), root.String()) || !has(t, n, root) {
		t.Fatalf("answered pinned, then dropped by the earlier unpin: pins %v, root stored %v", n.Pins(), has(t, n, root))
	}
	if _, err := n.GC(t.Context()); err != nil || !has(t, n, root) {
		t.Fatalf("GC after: %v, root stored %v", err, has(t, n, root))
	}
}
