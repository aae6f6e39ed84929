package wasmclient

import (
	"reflect"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/verify"
)

var splitCases = []struct {
	in   string
	want []string
	bad  bool
}{
	{"", []string{"index.html"}, false},
	{"/", []string{"index.html"}, false},
	{"/a.css", []string{"a.css"}, false},
	{"/docs/", []string{"docs", "index.html"}, false},
	{"/docs", []string{"docs"}, false},
	{"//x//y", []string{"x", "y"}, false},
	{"/a%20b.txt", []string{"a b.txt"}, false},
	{"/caf%C3%A9/", []string{"café", "index.html"}, false},
	{"/a+b", []string{"a+b"}, false},
	{"/..", nil, true},
	{"/a/./b", nil, true},
	{"/%2e%2e/x", nil, true},
	{"/a%2Fb", nil, true},
	{"/a%00", nil, true},
	{"/a%zz", nil, true},
	{"/a%2", nil, true},
}

func TestSplitPath(t *testing.T) {
	for _, tc := range splitCases {
		got, err := SplitPath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("SplitPath(%q) = %q, want ErrBadPath", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, tc := range splitCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := SplitPath(s)
		if err != nil {
			return
		}
		if len(segs) == 0 {
			t.Fatal("no segments")
		}
		for _, seg := range segs {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\x00") {
				t.Fatalf("bad segment %q from %q", seg, s)
			}
		}
	})
}

var rangeCases = []struct {
	in   string
	want *verify.ByteRange
}{
	{"bytes=0-99", &verify.ByteRange{From: 0, To: 99}},
	{"bytes=100-", &verify.ByteRange{From: 100, To: -1}},
	{" bytes=5-5 ", &verify.ByteRange{From: 5, To: 5}},
	{"bytes=-500", &verify.ByteRange{From: -500, To: -1}},
	{"bytes=-0", nil},
	{"bytes=9-3", nil},
	{"bytes=0-1,5-6", nil},
	{"bytes=a-b", nil},
	{"items=0-1", nil},
	{"bytes=-", nil},
	{"", nil},
}

func TestParseRange(t *testing.T) {
	for _, tc := range rangeCases {
		if got := ParseRange(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRange(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, tc := range rangeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseRange(s)
		if r == nil {
			return
		}
		if r.From < 0 && r.To != -1 || r.From >= 0 && r.To != -1 && r.To < r.From {
			t.Fatalf("ParseRange(%q) = %+v", s, r)
		}
	})
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"index.html":   "text/html; charset=utf-8",
		"a/b/APP.JS":   "text/javascript; charset=utf-8",
		"x.mjs":        "text/javascript; charset=utf-8",
		"v.m3u8":       "application/vnd.apple.mpegurl",
		"seg.m4s":      "video/iso.segment",
		"f.woff2":      "font/woff2",
		"noext":        DefaultContentType,
		"weird.tar.gz": DefaultContentType,
		"dir.d/file":   DefaultContentType,
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

const sessionDoc = `{"version":1,"site":"demo","root":"bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4","ttl":30,
 "fallback":"/.verity/v1/ipfs","nodes":[{"id":"nabc","webtransport":"https://127.0.0.1:4433/verity/v1",
 "certHashes":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","bad"],"http":"http://127.0.0.1:4001","record":{"x":1}},
 {"id":""},{"id":"gateway"}]}`

func TestParseSession(t *testing.T) {
	s, err := ParseSession([]byte(sessionDoc))
	if err != nil {
		t.Fatal(err)
	}
	if s.RootCID().String() != s.Root || s.TTL != 30 || len(s.Nodes) != 1 {
		t.Fatalf("session %+v", s)
	}
	hs := s.Nodes[0].CertHashBytes()
	if len(hs) != 1 || hs[0][31] != 31 {
		t.Fatalf("cert hashes %x", hs)
	}
	for _, bad := range []string{`{}`, `{"version":2,"root":"bafkqaaa"}`, `{"version":1,"root":"nope"}`, `[`} {
		if _, err := ParseSession([]byte(bad)); err == nil || HTTPStatus(err) != 503 {
			t.Errorf("ParseSession(%s): err %v, want ErrSession", bad, err)
		}
	}
}

func FuzzParseSession(f *testing.F) {
	f.Add([]byte(sessionDoc))
	f.Add([]byte(`{"version":1,"root":"bafkqaaa","nodes":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSession(b)
		if err != nil {
			return
		}
		if !s.RootCID().Defined() {
			t.Fatal("session without a root")
		}
		for _, n := range s.Nodes {
			if n.ID == "" || n.ID == GatewayNodeID {
				t.Fatalf("node id %q kept", n.ID)
			}
			for _, h := range n.CertHashBytes() {
				if len(h) != 32 {
					t.Fatal("cert hash length")
				}
			}
		}
	})
}
