//go:build !wasm

package verify_test

import (
	"net/url"
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
	bad := []string{
		"/ipns/x?format=car&dag-scope=entity",
		"/ipfs/" + root.String() + "?format=raw&dag-scope=entity",
		"/ipfs/" + root.String() + "?format=car&dag-scope=all",
		"/ipfs/" + root.String() + "/../x?format=car&dag-scope=entity",
		"/ipfs/" + root.String() + "?format=car&dag-scope=entity&entity-bytes=5:1",
		"/ipfs/" + root.String() + "?format=car&dag-scope=entity&entity-bytes=x:1",
		"/ipfs/notacid?format=car&dag-scope=entity",
	}
	for _, s := range bad {
		if _, err := verify.ParseTarget(s); !errorsIs(err, verify.ErrBadRequest) {
			t.Fatalf("%s: err = %v", s, err)
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
	f.Add("/ipfs/bafkqaaa/a/b?format=car&dag-scope=entity&entity-bytes=1:*")
	f.Add("/ipfs/bafkqaaa?format=car&dag-scope=entity&entity-bytes=-5:-1")
	f.Fuzz(func(t *testing.T, s string) {
		req, err := verify.ParseTarget(s)
		if err != nil {
			return
		}
		again, err := verify.ParseTarget(req.Target())
		if err != nil || again.Target() != req.Target() {
			t.Fatalf("%q -> %q -> %v", s, req.Target(), err)
		}
	})
}
