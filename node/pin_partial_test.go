package node_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// fileCAR imports one file and returns its CAR and root.
func fileCAR(t *testing.T, data string) ([]byte, cid.Cid) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), p, &buf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), root
}

// dirCAR builds a directory linking files by name, as a bucket's root is
// built, and returns the partial CAR of its one block (the files' blocks
// are not in it) and its root.
func dirCAR(t *testing.T, files map[string]cid.Cid) ([]byte, cid.Cid) {
	t.Helper()
	nd := ft.EmptyDirNode()
	nd.SetCidBuilder(importer.CidBuilder)
	for name, c := range files {
		if err := nd.AddRawLink(name, &ipld.Link{Cid: c}); err != nil {
			t.Fatal(err)
		}
	}
	return writeCARv1(nd.Cid(), []cid.Cid{nd.Cid()}, map[cid.Cid][]byte{nd.Cid(): nd.RawData()}), nd.Cid()
}

// A partial pin order (a bucket's root): a node holding nothing fetches
// the directory blocks, then each object it lacks as its own CAR; a node
// holding the previous root asks for the new root without that root's
// blocks and fetches only the object that changed; a bad object fails
// the pin and leaves nothing pinned.
func TestPartialPin(t *testing.T) {
	n := newNode(t, node.Config{DataDir: t.TempDir()})
	aCAR, a := fileCAR(t, "object a")
	bCAR, b := fileCAR(t, "object b")
	cCAR, c := fileCAR(t, "object c")
	badCAR, bad := fileCAR(t, "object bad")
	badCAR[len(badCAR)-1] ^= 1 // its block's bytes no longer hash to its CID
	d1CAR, d1 := dirCAR(t, map[string]cid.Cid{"a.txt": a, "b.txt": b})
	d2CAR, d2 := dirCAR(t, map[string]cid.Cid{"a.txt": a, "b.txt": c})
	d3CAR, d3 := dirCAR(t, map[string]cid.Cid{"a.txt": a, "bad.txt": bad})
	cars := map[string][]byte{}
	for c, car := range map[cid.Cid][]byte{a: aCAR, b: bCAR, c: cCAR, bad: badCAR, d1: d1CAR, d2: d2CAR, d3: d3CAR} {
		cars["/v1/content/"+c.String()+".car"] = car
	}
	var mu sync.Mutex
	var asked []string
	srv := carServer(t, cars, func(r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RequestURI())
		mu.Unlock()
	})
	order := func(root, base cid.Cid) nodeproto.Pin {
		p := nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/v1/content/" + root.String() + ".car", Partial: true}
		if base.Defined() {
			p.Base = base.String()
		}
		return p
	}
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := asked
		asked = nil
		return out
	}
	car := func(c cid.Cid) string { return "/v1/content/" + c.String() + ".car" }

	if err := n.Pin(t.Context(), order(d1, cid.Undef)); err != nil {
		t.Fatal(err)
	}
	if got := took(); len(got) != 3 || got[0] != car(d1) {
		t.Fatalf("first root fetched %v, want its directory then both objects", got)
	}
	for _, c := range []cid.Cid{d1, a, b} {
		if !has(t, n, c) {
			t.Fatalf("%s not stored", c)
		}
	}
	// The next root, from a node holding the first: only the new
	// directory block (asked without the base's) and the new object.
	if err := n.Pin(t.Context(), order(d2, d1)); err != nil {
		t.Fatal(err)
	}
	if got := took(); len(got) != 2 || got[0] != car(d2)+"?base="+d1.String() || got[1] != car(c) {
		t.Fatalf("second root fetched %v, want %s?base=%s and %s", got, car(d2), d1, car(c))
	}
	// An object that does not verify: nothing pinned, its directory
	// block not kept.
	if err := n.Pin(t.Context(), order(d3, d2)); err == nil {
		t.Fatal("pinned a root whose object does not verify")
	}
	if pins := n.Pins(); len(pins) != 2 || has(t, n, d3) {
		t.Fatalf("after a refused partial pin: pins %v, directory stored %v", pins, has(t, n, d3))
	}
	// GC keeps what the roots reach.
	if _, err := n.GC(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{d1, d2, a, b, c} {
		if !has(t, n, c) {
			t.Fatalf("GC removed %s", c)
		}
	}
}

// A partial pin whose gateway stalls on an object's CAR fails with the
// stall once PinSourceStall passes with too little read, and nothing of
// it is pinned. Before, it waited as long as the session lasted, holding
// the node's import lock.
func TestPartialPinStallingGateway(t *testing.T) {
	aCAR, a := fileCAR(t, "object a")
	dCAR, d := dirCAR(t, map[string]cid.Cid{"a.txt": a})
	stalling := stallingServer(t, aCAR[:16])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/content/"+d.String()+".car" {
			w.Write(dCAR)
			return
		}
		stalling.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	n := newNode(t, node.Config{DataDir: t.TempDir(), PinSourceStall: testutil.Scale(time.Second)})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := n.Pin(ctx, nodeproto.Pin{Root: d.String(), CAR: srv.URL + "/v1/content/" + d.String() + ".car", Partial: true})
	if err == nil || !strings.Contains(err.Error(), "sent too little") {
		t.Fatalf("partial pin from a stalling gateway: %v", err)
	}
	if pins := n.Pins(); len(pins) != 0 {
		t.Fatalf("pins %v", pins)
	}
}
