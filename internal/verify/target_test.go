//go:build !wasm

package verify_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// ParseTarget is native only (see its doc); these tests too.

func TestTargetRoundTrip(t *testing.T) {
	root := mustSum(t, cid.CodecDagPB, []byte("x"))
	cases := []verify.Request{
		{Root: root},
		{Root: root, Path: []string{"a b", "ü", "x?y#z", "100%"}},
		{Root: root, Path: []string{"v.mp4"}, Range: &verify.ByteRange{From: 10, To: -1}},
		{Root: root, Range: &verify.ByteRange{From: -100, To: -1}},
		{Root: root, Range: &verify.ByteRange{From: 0, To: 0}},
		{Root: root, Range: &verify.ByteRange{From: 5, To: -3}},
	}
	for _, req := range cases {
		got, err := verify.ParseTarget(req.Target())
		if err != nil {
			t.Fatalf("%s: %v", req.Target(), err)
		}
		if got.Target() != req.Target() || !got.Root.Equal(req.Root) || len(got.Path) != len(req.Path) {
			t.Fatalf("%s -> %s", req.Target(), got.Target())
		}
		if (got.Range == nil) != (req.Range == nil) || (got.Range != nil && *got.Range != *req.Range) {
			t.Fatalf("%s: range %v", req.Target(), got.Range)
		}
	}
}

// targetRoot is the root of the parse cases (any CID would do).
const targetRoot = "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4"

var parseTargetCases = []struct {
	target string
	path   []string
	rng    *verify.ByteRange
	ok     bool
}{
	{target: "/ipfs/R?format=car&dag-scope=entity", ok: true},
	{target: "/ipfs/R/?format=car&dag-scope=entity", ok: true},
	{target: "/ipfs/R/a/b%20c.txt?format=car&dag-scope=entity", path: []string{"a", "b c.txt"}, ok: true},
	{target: "/ipfs/R/about/?format=car&dag-scope=entity", path: []string{"about"}, ok: true},
	{target: "/ipfs/R/a+b/%E2%9C%93?format=car&dag-scope=entity", path: []string{"a+b", "✓"}, ok: true},
	{target: "/ipfs/R/x?dag-scope=entity&format=car", path: []string{"x"}, ok: true},
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=0:*", path: []string{"x"}, rng: &verify.ByteRange{From: 0, To: -1}, ok: true},
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=10:20", path: []string{"x"}, rng: &verify.ByteRange{From: 10, To: 20}, ok: true},
	// A to past any end is "*": as 2^63-1 it overflows a node's 1+to-from.
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=0:9223372036854775807", path: []string{"x"}, rng: &verify.ByteRange{From: 0, To: -1}, ok: true},
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=-5:*", path: []string{"x"}, rng: &verify.ByteRange{From: -5, To: -1}, ok: true},
	// boxo's rule: either end may count from the end of the file.
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=-5:10", path: []string{"x"}, rng: &verify.ByteRange{From: -5, To: 10}, ok: true},
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=5:-3", path: []string{"x"}, rng: &verify.ByteRange{From: 5, To: -3}, ok: true},
	{target: "/ipfs/R/x?format=car&dag-scope=entity&entity-bytes=-9:-3", path: []string{"x"}, rng: &verify.ByteRange{From: -9, To: -3}, ok: true},
	// What every response is anyway.
	{target: "/ipfs/R?format=car&dag-scope=entity&car-version=1&car-order=dfs&car-dups=y", ok: true},
	{target: "/ipfs/R?format=car&dag-scope=entity&car-order=unk", ok: true},

	{target: "/ipns/R?format=car&dag-scope=entity"},
	{target: "ipfs/R?format=car&dag-scope=entity"},
	{target: "/ipfs/?format=car&dag-scope=entity"},
	{target: "/ipfs/notacid?format=car&dag-scope=entity"},
	{target: "/ipfs/R"},
	{target: "/ipfs/R?"},
	{target: "/ipfs/R?format=car"},
	{target: "/ipfs/R?dag-scope=entity"},
	{target: "/ipfs/R?format=raw&dag-scope=entity"},
	{target: "/ipfs/R?format=car&dag-scope=all"},
	{target: "/ipfs/R?format=car&dag-scope=entity&format=car"},
	{target: "/ipfs/R?format=car&dag-scope=entity&foo=bar"},
	{target: "/ipfs/R?format=car&dag-scope=entity&download=true"},
	{target: "/ipfs/R?format=car&dag-scope=entity&car-dups=n"},
	{target: "/ipfs/R?format=car&dag-scope=entity&car-version=2"},
	{target: "/ipfs/R?format=car&dag-scope=entity&car-order=bfs"},
	{target: "/ipfs/R?format=car;dag-scope=entity"},
	{target: "/ipfs/R?format=car&dag-scope=entity&x=%zz"},
	{target: "/ipfs/R/../x?format=car&dag-scope=entity"},
	{target: "/ipfs/R/./x?format=car&dag-scope=entity"},
	{target: "/ipfs/R/%2e%2e/x?format=car&dag-scope=entity"},
	{target: "/ipfs/R/a//b?format=car&dag-scope=entity"},
	{target: "/ipfs/R//?format=car&dag-scope=entity"},
	{target: "/ipfs/R/a%2Fb?format=car&dag-scope=entity"},
	{target: "/ipfs/R/a%00b?format=car&dag-scope=entity"},
	{target: "/ipfs/R/a%zz?format=car&dag-scope=entity"},
	{target: "/ipfs/R/" + strings.Repeat("a/", verify.MaxPathSegments) + "b?format=car&dag-scope=entity"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes="},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=5"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=5:1"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=-1:-5"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=x:1"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=1:y"},
	{target: "/ipfs/R?format=car&dag-scope=entity&entity-bytes=0:*&entity-bytes=1:*"},
}

func TestParseTarget(t *testing.T) {
	for _, tc := range parseTargetCases {
		target := strings.Replace(tc.target, "/R", "/"+targetRoot, 1)
		req, err := verify.ParseTarget(target)
		if !tc.ok {
			if !errorsIs(err, verify.ErrBadRequest) {
				t.Errorf("ParseTarget(%q): err = %v, want ErrBadRequest", tc.target, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tc.target, err)
			continue
		}
		if req.Root.String() != targetRoot || !slices.Equal(req.Path, tc.path) ||
			(req.Range == nil) != (tc.rng == nil) || req.Range != nil && *req.Range != *tc.rng {
			t.Errorf("ParseTarget(%q) = %s %q %v, want %q %v", tc.target, req.Root, req.Path, req.Range, tc.path, tc.rng)
		}
	}
}

// Target escapes path segments exactly as url.PathEscape does.
func TestTargetEscapesLikeNetURL(t *testing.T) {
	root := mustSum(t, cid.CodecDagPB, []byte("x"))
	var all strings.Builder
	for c := 0; c < 256; c++ {
		all.WriteByte(byte(c))
	}
	for _, seg := range []string{"plain", "a b", "ü", "x?y#z", "100%", "$&+,/:;=@", all.String()} {
		req := verify.Request{Root: root, Path: []string{seg, "b"}}
		want := "/ipfs/" + root.String() + "/" + url.PathEscape(seg) + "/b?format=car&dag-scope=entity"
		if got := req.Target(); got != want {
			t.Errorf("segment %q: %s, want %s", seg, got, want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, tc := range parseTargetCases {
		f.Add(strings.Replace(tc.target, "/R", "/"+targetRoot, 1))
	}
	f.Fuzz(func(t *testing.T, s string) {
		req, err := verify.ParseTarget(s)
		if err != nil {
			if !errorsIs(err, verify.ErrBadRequest) {
				t.Fatalf("%q: error %v is not ErrBadRequest", s, err)
			}
			return
		}
		// What is accepted is a request Target writes and reads back.
		again, err := verify.ParseTarget(req.Target())
		if err != nil || again.Target() != req.Target() {
			t.Fatalf("%q -> %q -> %v", s, req.Target(), err)
		}
	})
}
