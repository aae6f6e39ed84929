package webfile

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

var splitCases = []struct {
	in   string
	segs []string
	dir  bool
	bad  bool
}{
	{in: "", dir: true},
	{in: "/", dir: true},
	{in: "/a.css", segs: []string{"a.css"}},
	{in: "/docs/", segs: []string{"docs"}, dir: true},
	{in: "/docs", segs: []string{"docs"}},
	{in: "/a/b.css", segs: []string{"a", "b.css"}},
	{in: "a/b", segs: []string{"a", "b"}},
	{in: "/a%20b.txt", segs: []string{"a b.txt"}},
	{in: "/caf%C3%A9/", segs: []string{"café"}, dir: true},
	{in: "/%e2%9c%93.txt", segs: []string{"✓.txt"}},
	{in: "/a+b", segs: []string{"a+b"}},
	{in: "/...", segs: []string{"..."}},
	{in: "//", bad: true},
	{in: "//x", bad: true},
	{in: "/a//b", bad: true},
	{in: "/a//", bad: true},
	{in: "/..", bad: true},
	{in: "/a/./b", bad: true},
	{in: "/%2e%2e/x", bad: true},
	{in: "/%2E", bad: true},
	{in: "/a%2Fb", bad: true},
	{in: "/a%00", bad: true},
	{in: "/a%zz", bad: true},
	{in: "/a%2", bad: true},
	{in: "/%", bad: true},
}

func TestSplitPath(t *testing.T) {
	for _, tc := range splitCases {
		t.Run(tc.in, func(t *testing.T) {
			segs, dir, err := SplitPath(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("SplitPath(%q) = %q, %v, %v; want ErrBadPath", tc.in, segs, dir, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(segs, tc.segs) || dir != tc.dir {
				t.Fatalf("SplitPath(%q) = %q, %v, %v; want %q, %v", tc.in, segs, dir, err, tc.segs, tc.dir)
			}
		})
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, tc := range splitCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, dir, err := SplitPath(in)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("SplitPath(%q): %v", in, err)
			}
			return
		}
		if len(segs) == 0 && !dir {
			t.Fatalf("SplitPath(%q): no segment and not a directory", in)
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
				t.Fatalf("SplitPath(%q) accepted segment %q", in, s)
			}
		}
	})
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"index.html":   "text/html; charset=utf-8",
		"a/b/APP.JS":   "text/javascript; charset=utf-8",
		"x.mjs":        "text/javascript; charset=utf-8",
		"app.js.map":   "application/json",
		"data.csv":     "text/csv; charset=utf-8",
		"v.m3u8":       "application/vnd.apple.mpegurl",
		"seg.m4s":      "video/iso.segment",
		"seg.ts":       "video/mp2t",
		"manifest.mpd": "application/dash+xml",
		"subs.vtt":     "text/vtt; charset=utf-8",
		"film.mp4":     "video/mp4",
		"film.webm":    "video/webm",
		"song.mp3":     "audio/mpeg",
		"song.m4a":     "audio/mp4",
		"f.woff2":      "font/woff2",
		"f.ttf":        "font/ttf",
		"m.wasm":       "application/wasm",
		"noext":        DefaultContentType,
		".hidden":      DefaultContentType,
		"trailing.":    DefaultContentType,
		"weird.tar.gz": DefaultContentType,
		"dir.d/file":   DefaultContentType,
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

var rangeCases = []struct {
	name   string
	header string
	size   int64
	want   *Range // nil: full body (unless unsat)
	unsat  bool
}{
	{"start", "bytes=0-99", 1000, &Range{0, 99}, false},
	{"middle", "bytes=300-699", 1000, &Range{300, 699}, false},
	{"single byte", "bytes=5-5", 1000, &Range{5, 5}, false},
	{"last byte", "bytes=999-999", 1000, &Range{999, 999}, false},
	{"open", "bytes=100-", 1000, &Range{100, 999}, false},
	{"open from zero", "bytes=0-", 1000, &Range{0, 999}, false},
	{"clamped end", "bytes=900-5000", 1000, &Range{900, 999}, false},
	{"huge end", "bytes=1-99999999999999999999999", 1000, &Range{1, 999}, false},
	{"suffix", "bytes=-100", 1000, &Range{900, 999}, false},
	{"suffix all", "bytes=-1000", 1000, &Range{0, 999}, false},
	{"suffix longer", "bytes=-5000", 1000, &Range{0, 999}, false},
	{"unit case", "Bytes=0-1", 1000, &Range{0, 1}, false},
	{"outer space", "  bytes=0-1 ", 1000, &Range{0, 1}, false},
	{"start at end", "bytes=1000-", 1000, nil, true},
	{"start past end", "bytes=2000-3000", 1000, nil, true},
	{"huge start", "bytes=99999999999999999999-", 1000, nil, true},
	{"suffix zero", "bytes=-0", 1000, nil, true},
	{"empty entity", "bytes=0-", 0, nil, true},
	{"empty entity suffix", "bytes=-5", 0, nil, true},
	{"no header", "", 1000, nil, false},
	{"reversed", "bytes=9-3", 1000, nil, false},
	{"multi", "bytes=0-1,5-6", 1000, nil, false},
	{"multi unsat", "bytes=2000-,3000-", 1000, nil, false},
	{"other unit", "items=0-1", 1000, nil, false},
	{"letters", "bytes=a-b", 1000, nil, false},
	{"dash only", "bytes=-", 1000, nil, false},
	{"no dash", "bytes=5", 1000, nil, false},
	{"plus sign", "bytes=+5-9", 1000, nil, false},
	{"negative end", "bytes=5--9", 1000, nil, false},
	{"inner space", "bytes= 0-1", 1000, nil, false},
	{"no equals", "bytes 0-1", 1000, nil, false},
}

func TestParseRange(t *testing.T) {
	for _, tc := range rangeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRange(tc.header, tc.size)
			if tc.unsat {
				var ue *UnsatisfiableError
				if !errors.As(err, &ue) || !errors.Is(err, ErrUnsatisfiable) || got != nil {
					t.Fatalf("ParseRange(%q, %d) = %v, %v; want unsatisfiable", tc.header, tc.size, got, err)
				}
				if want := "bytes */" + itoa(tc.size); ue.ContentRange() != want {
					t.Fatalf("ContentRange = %q, want %q", ue.ContentRange(), want)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseRange(%q, %d) = %v, %v; want %v", tc.header, tc.size, got, err, tc.want)
			}
		})
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestRangeHeaders(t *testing.T) {
	r, _ := ParseRange("bytes=300000-700000", 1<<20)
	if r.ContentRange(1<<20) != "bytes 300000-700000/1048576" || r.Length() != 400001 {
		t.Fatalf("got %q, %d", r.ContentRange(1<<20), r.Length())
	}
}

// TestEntityBytes: the entity-bytes requested before the size is known
// select the same bytes as the resolved range.
func TestEntityBytes(t *testing.T) {
	for _, tc := range []struct {
		header   string
		from, to int64
	}{
		{"bytes=0-99", 0, 99},
		{"bytes=100-", 100, -1},
		{"bytes=-100", -100, -1},
		{"bytes=-0", math.MaxInt64, -1},
		// A last-pos past any end, saturated when parsed: to the end, not
		// a number that overflows 1+to-from where it is served.
		{"bytes=0-99999999999999999999", 0, -1},
		{"bytes=1-9223372036854775807", 1, -1},
		{"bytes=1-9223372036854775806", 1, math.MaxInt64 - 1},
	} {
		s, ok := ParseSpec(tc.header)
		if !ok {
			t.Fatalf("ParseSpec(%q) not ok", tc.header)
		}
		if from, to := s.EntityBytes(); from != tc.from || to != tc.to {
			t.Errorf("%q: EntityBytes = %d:%d, want %d:%d", tc.header, from, to, tc.from, tc.to)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, tc := range rangeCases {
		f.Add(tc.header, tc.size)
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, err := ParseRange(header, size)
		s, ok := ParseSpec(header)
		switch {
		case err != nil:
			if !ok || !errors.Is(err, ErrUnsatisfiable) || r != nil {
				t.Fatalf("ParseRange(%q, %d) = %v, %v", header, size, r, err)
			}
		case r == nil:
			if ok {
				t.Fatalf("ParseRange(%q, %d) ignored a valid spec %+v", header, size, s)
			}
		default:
			if !ok || r.Start < 0 || r.End < r.Start || r.End >= size || r.Length() > size {
				t.Fatalf("ParseRange(%q, %d) = %+v", header, size, *r)
			}
			// The entity-bytes asked for cover exactly the range.
			from, to := s.EntityBytes()
			if from < 0 {
				from = max(size+from, 0)
			}
			if to < 0 || to >= size {
				to = size - 1
			}
			if from != r.Start || to != r.End {
				t.Fatalf("%q/%d: entity-bytes %d:%d, range %+v", header, size, from, to, *r)
			}
		}
	})
}

func TestIfRange(t *testing.T) {
	const etag = `"bafkreiabc"`
	for _, tc := range []struct {
		ifRange, etag string
		want          bool
	}{
		{"", etag, true},
		{etag, etag, true},
		{" " + etag + " ", etag, true},
		{`"other"`, etag, false},
		{`W/"bafkreiabc"`, etag, false},
		{etag, `W/"bafkreiabc"`, false},
		{"Sat, 21 Nov 2026 20:00:00 GMT", etag, false},
		{"*", etag, false},
	} {
		if got := IfRange(tc.ifRange, tc.etag); got != tc.want {
			t.Errorf("IfRange(%q, %q) = %v, want %v", tc.ifRange, tc.etag, got, tc.want)
		}
	}
}

func FuzzIfRange(f *testing.F) {
	f.Add(`"x"`, `"x"`)
	f.Add(`W/"x"`, `W/"x"`)
	f.Fuzz(func(t *testing.T, ifRange, etag string) {
		if IfRange(ifRange, etag) && ifRange != "" && strings.TrimSpace(ifRange) != "" && (etag == "" || etag[0] != '"') {
			t.Fatalf("IfRange(%q, %q) honoured a weak or empty tag", ifRange, etag)
		}
	})
}
