//go:build !js

package wasmclient_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/wasmclient"
)

// TestBaoOfferedToEveryNode: every stream request offers bao16; a node
// that ignores it (protocol version 1) serves the plain CAR, a node that
// uses it the bao16 body, and the client verifies both.
func TestBaoOfferedToEveryNode(t *testing.T) {
	s := demoSite(t)
	for _, useBao := range []bool{false, true} {
		e := newEnv(t, s, 1, nil)
		e.nodes[0].setBao(useBao)
		for _, path := range []string{"/big.bin", "/style.css", "/empty.txt"} {
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: path})
			if want := s.files[strings.TrimPrefix(path, "/")]; r.err != nil || !bytes.Equal(r.body, want) {
				t.Fatalf("bao %v %s: %d bytes, %v", useBao, path, len(r.body), r.err)
			}
		}
		if got := e.nodes[0].baoOffers(); got != 3 {
			t.Fatalf("bao %v: %d of 3 requests offered bao16", useBao, got)
		}
		if fb, _, reps := e.gw.counts(); fb != 0 || len(reps) != 0 {
			t.Fatalf("bao %v: fallback %d, reports %v", useBao, fb, reps)
		}
		if rec := e.client.Stats().Requests()[0]; rec.Blocks < 14 {
			t.Fatalf("bao %v: %d blocks counted, want one per whole block", useBao, rec.Blocks)
		}
	}
}

// leafPayload returns the offset, in the bao16 body of the CAR for
// target, of the Bao encoding of the index-th raw leaf.
func leafPayload(t *testing.T, s *site, target string, index int) (int64, cid.CID) {
	t.Helper()
	_, v1 := s.car(target)
	body := toBao(v1)
	r, err := car.NewReader(bytes.NewReader(body), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; {
		c, _, err := r.NextSection()
		if err != nil {
			t.Fatalf("leaf %d: %v", index, err)
		}
		if c.Codec == cid.CodecRaw {
			if i == index {
				return r.Offset(), c
			}
			i++
		}
		if _, err := io.Copy(io.Discard, r.Payload()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBaoFailoverMidBlock: a node whose bao16 body has a byte altered in
// the middle of a block (or is cut there) is caught at that group; the
// groups before it have reached the page, and the next node resumes from
// the first byte not delivered, inside the block. The page gets the file.
func TestBaoFailoverMidBlock(t *testing.T) {
	s := demoSite(t)
	target := "/ipfs/" + s.root.String() + "/big.bin?format=car&dag-scope=entity"
	// The middle of leaf 1: its chunk group 8.
	off, leaf := leafPayload(t, s, target, 1)
	group8 := off + int64(groupOffset(256<<10, 8))
	for _, tc := range []struct {
		name   string
		fault  fault
		reason string
	}{
		{"altered byte", fault{corruptAt: group8 + 5000}, wasmclient.ReasonBadBlock},
		{"cut inside a group", fault{truncateAt: group8 + 5000}, wasmclient.ReasonProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.IdleTimeout = 2 * time.Second })
			e.nodes[0].setBao(true)
			e.nodes[0].setFault(tc.fault)
			e.nodes[1].setBao(true)
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
			if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
				t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
			}
			// The first node delivered leaf 0 and 8 groups of leaf 1; the
			// second was asked for the rest, from inside leaf 1.
			from := int64(256<<10 + 8*bao.GroupSize)
			tg := e.nodes[1].targets()
			if len(tg) != 1 || !strings.Contains(tg[0], "entity-bytes="+itoa(from)+":") {
				t.Fatalf("second node targets %q, want a range from byte %d", tg, from)
			}
			reps := e.client.Stats().Reports()
			if len(reps) != 1 || reps[0].Node != "na" || reps[0].Reason != tc.reason {
				t.Fatalf("reports %+v, want one %s for na", reps, tc.reason)
			}
			if tc.reason == wasmclient.ReasonBadBlock && !strings.Contains(reps[0].Detail, leaf.String()) {
				t.Fatalf("report detail %q does not name block %s", reps[0].Detail, leaf)
			}
		})
	}
}

// groupOffset is the offset of chunk group i's data in the Bao encoding of
// an n-byte block (pre-order: a parent, its left subtree, its right one).
func groupOffset(n, i int) int {
	pos := bao.HeaderSize
	var walk func(off, n int) bool
	walk = func(off, n int) bool {
		if n <= bao.GroupSize {
			if off == i*bao.GroupSize {
				return true
			}
			pos += n
			return false
		}
		pos += bao.ParentSize
		mid := 1
		for mid*2 < n {
			mid *= 2
		}
		return walk(off, mid) || walk(off+mid, n-mid)
	}
	walk(0, n)
	return pos
}
