package gateway

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

var splitPathCases = []struct {
	in   string
	segs []string
	dir  bool
	ok   bool
}{
	{"/", nil, true, true},
	{"", nil, true, true},
	{"/a", []string{"a"}, false, true},
	{"/a/", []string{"a"}, true, true},
	{"/a/b.css", []string{"a", "b.css"}, false, true},
	{"/a%20b/c", []string{"a b", "c"}, false, true},
	{"/%E2%9C%93.txt", []string{"✓.txt"}, false, true},
	{"/a//b", nil, false, false},
	{"/a/../b", nil, false, false},
	{"/./a", nil, false, false},
	{"/a%2Fb", nil, false, false},
	{"/a%00b", nil, false, false},
	{"/a%zz", nil, false, false},
	{"/%2e%2e/x", nil, false, false},
}

func TestSplitPath(t *testing.T) {
	for _, tc := range splitPathCases {
		segs, dir, err := splitPath(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("splitPath(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (!reflect.DeepEqual(segs, tc.segs) || dir != tc.dir) {
			t.Errorf("splitPath(%q) = %q, %v; want %q, %v", tc.in, segs, dir, tc.segs, tc.dir)
		}
	}
}

func FuzzSplitPath(f *testing.F) {
	for _, tc := range splitPathCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, _, err := splitPath(in)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
				t.Fatalf("splitPath(%q) accepted segment %q", in, s)
			}
		}
	})
}

// parseFallback maps FallbackPrefix to /ipfs and leaves the rest to
// verify.ParseTarget, whose table tests and fuzz target cover the rule;
// this checks the mapping and that every refusal is a 400.
func TestParseFallback(t *testing.T) {
	root := testCID(t, "root")
	for _, tc := range []struct {
		url  string
		path []string
		ok   bool
	}{
		{"/.verity/v1/ipfs/" + root + "?format=car&dag-scope=entity", nil, true},
		{"/.verity/v1/ipfs/" + root + "/a/b%20c.txt?format=car&dag-scope=entity&entity-bytes=0:*", []string{"a", "b c.txt"}, true},
		{"/.verity/v1/ipfs/" + root + "/x?format=car&dag-scope=entity&entity-bytes=-5:*&car-dups=y", []string{"x"}, true},
		{"/.verity/v1/ipfs/" + root + "/x?format=car&dag-scope=entity&download=true", nil, false},
		{"/.verity/v1/ipfs/" + root + "/x?format=car&dag-scope=all", nil, false},
		{"/.verity/v1/ipfs/" + root + "/x", nil, false},
		{"/.verity/v1/ipfs/" + root + "/../x?format=car&dag-scope=entity", nil, false},
		{"/.verity/v1/ipfs/nope?format=car&dag-scope=entity", nil, false},
		{"/.verity/v1/ipfs/?format=car&dag-scope=entity", nil, false},
		{"/.verity/v1/ipns/" + root + "?format=car&dag-scope=entity", nil, false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		req, err := parseFallback(u)
		if (err == nil) != tc.ok {
			t.Errorf("parseFallback(%q) err = %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		if err != nil {
			if statusOf(err) != 400 {
				t.Errorf("parseFallback(%q): status %d, want 400", tc.url, statusOf(err))
			}
			continue
		}
		if req.Root.String() != root || !reflect.DeepEqual(req.Path, tc.path) {
			t.Errorf("parseFallback(%q) = %s %q", tc.url, req.Root, req.Path)
		}
	}
}

var reportCases = []struct {
	body string
	ok   bool
}{
	{`{"node":"nabc","cid":"bafy","reason":"bad-block","detail":"x"}`, true},
	{`{"node":"nabc","reason":"timeout"}`, true},
	{`{"node":"nabc","reason":"protocol","extra":1}`, true},
	{`{"node":"nabc","reason":"nope"}`, false},
	{`{"reason":"unreachable"}`, false},
	{`{"node":"nabc","reason":"timeout"} {}`, false},
	{`[]`, false},
	{``, false},
}

func TestParseReport(t *testing.T) {
	for _, tc := range reportCases {
		_, err := parseReport([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("parseReport(%q) err = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}

func FuzzParseReport(f *testing.F) {
	for _, tc := range reportCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := parseReport(body)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("non-400 error %v", err)
			}
			return
		}
		if rep.Node == "" {
			t.Fatal("accepted a report without a node")
		}
	})
}

func TestHTMLCache(t *testing.T) {
	c := newHTMLCache(100)
	doc := func(n int) *htmlDoc { return &htmlDoc{body: make([]byte, n)} }
	c.put(cacheKey{"a", "r1", "/1"}, doc(40))
	c.put(cacheKey{"a", "r1", "/2"}, doc(40))
	c.get(cacheKey{"a", "r1", "/1"}) // /1 is now the most recent
	c.put(cacheKey{"b", "r9", "/3"}, doc(40))
	if _, ok := c.get(cacheKey{"a", "r1", "/2"}); ok {
		t.Fatal("least recently used entry not evicted")
	}
	if _, ok := c.get(cacheKey{"a", "r1", "/1"}); !ok {
		t.Fatal("recent entry evicted")
	}
	if c.bytes() != 80 {
		t.Fatalf("size %d", c.bytes())
	}
	c.put(cacheKey{"a", "r1", "/big"}, doc(101))
	if _, ok := c.get(cacheKey{"a", "r1", "/big"}); ok {
		t.Fatal("entry over the whole budget was cached")
	}
	if n := c.purgeSite("a", "r2"); n != 1 || c.bytes() != 40 {
		t.Fatalf("purge removed %d, size %d", n, c.bytes())
	}
	if _, ok := c.get(cacheKey{"b", "r9", "/3"}); !ok {
		t.Fatal("purge of site a removed site b")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"gzip": true, "gzip, deflate, br": true, "br;q=1.0, gzip;q=0.8": true,
		"gzip;q=0": false, "identity": false, "": false, "*": true, "GZIP": true,
	} {
		r, _ := newRequestWithAE(in)
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v", in, got)
		}
	}
}

func newRequestWithAE(ae string) (*http.Request, error) {
	r, err := http.NewRequest(http.MethodGet, "http://x/", nil)
	if err == nil && ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	return r, err
}
