package node_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/node"
)

// When the accepting gateway's CAR cannot be had, a pin order is fetched
// from the other holders it lists, verified as always: a holder that sends
// a partial DAG is refused, and the next one's CAR is pinned. With no
// good source at all nothing is pinned.
func TestPinFromOtherHolders(t *testing.T) {
	f := buildFixture(t)
	holder := newNode(t, node.Config{})
	if _, err := holder.ImportCAR(t.Context(), bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	runNode(t, holder)

	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL + "/v1/content/" + f.root.String() + ".car"
	gone.Close() // the accepting gateway is gone: connection refused

	// A holder that sends the root block only: every block it sends is
	// genuine, but the DAG is not all there.
	partial := writeCARv1(f.root, []cid.Cid{f.root}, f.blocks)
	partialSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.ipld.car")
		w.Write(partial)
	}))
	defer partialSrv.Close()
	good := holder.HTTPURL() + "/ipfs/" + f.root.String() + "?format=car"

	// Only bad sources: refused, not pinned.
	n1 := newNode(t, node.Config{})
	err := n1.Pin(t.Context(), coordinator.Pin{Root: f.root.String(), CAR: goneURL, Sources: []string{partialSrv.URL + "/ipfs/x"}})
	if err == nil || !errors.Is(err, node.ErrBadCAR) || len(n1.Pins()) != 0 {
		t.Fatalf("pin from a gone gateway and a partial holder: %v, pins %v", err, n1.Pins())
	}
	// No source at all.
	if err := n1.Pin(t.Context(), coordinator.Pin{Root: f.root.String()}); err == nil {
		t.Fatal("pinned with no source")
	}

	// The gateway gone, a partial holder, then a good one: pinned, whole.
	n2 := newNode(t, node.Config{})
	if err := n2.Pin(t.Context(), coordinator.Pin{Root: f.root.String(), CAR: goneURL, Sources: []string{partialSrv.URL + "/ipfs/x", good}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n2.Pins(), []string{f.root.String()}) {
		t.Fatalf("pins %v", n2.Pins())
	}
	for c := range f.blocks {
		if !has(t, n2, c) {
			t.Fatalf("block %s missing after the pin", c)
		}
	}
}
