package headers

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const example = `# Netlify/Cloudflare Pages format
/*
  X-Frame-Options: DENY
  Referrer-Policy: no-referrer

/assets/*
  Cache-Control: public, max-age=31536000, immutable
	Access-Control-Allow-Origin: *

/blog/:slug
  X-Robots-Tag: noindex
  Link: </blog/:slug/feed.xml>; rel=alternate
  ! X-Frame-Options

/embed/*
  Content-Security-Policy: frame-ancestors https://example.com
  x-frame-options: SAMEORIGIN
/files/*.pdf
  Content-Disposition: attachment
`

func TestParseAndMatch(t *testing.T) {
	rs, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 {
		t.Fatalf("%d rules", len(rs))
	}
	for _, c := range []struct {
		path   string
		want   map[string]string
		remove []string
	}{
		{"/", map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}, nil},
		{"/assets/app.123.js", map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "public, max-age=31536000, immutable", "Access-Control-Allow-Origin": "*"}, nil},
		{"/assets/", map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}, nil},
		{"/assets", map[string]string{"Cache-Control": ""}, nil},
		{"/blog/hello", map[string]string{"X-Frame-Options": "", "X-Robots-Tag": "noindex", "Link": "</blog/hello/feed.xml>; rel=alternate"}, []string{"X-Frame-Options"}},
		{"/blog/hello/more", map[string]string{"X-Frame-Options": "DENY", "X-Robots-Tag": ""}, nil},
		{"/embed/x", map[string]string{"X-Frame-Options": "DENY, SAMEORIGIN", "Content-Security-Policy": "frame-ancestors https://example.com"}, nil},
		{"/files/a/b.pdf", map[string]string{"Content-Disposition": "attachment"}, nil},
		{"/files/a/b.pdfx", map[string]string{"Content-Disposition": ""}, nil},
	} {
		res := rs.Match(c.path)
		for k, v := range c.want {
			if got := res.Set.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.path, k, got, v)
			}
		}
		if strings.Join(res.Remove, ",") != strings.Join(c.remove, ",") {
			t.Errorf("%s: remove %v, want %v", c.path, res.Remove, c.remove)
		}
	}
}

func TestApply(t *testing.T) {
	rs, err := Parse([]byte("/*\n  Cache-Control: public, max-age=60\n  ! Referrer-Policy\n  X-A: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Cache-Control": {"no-cache"}, "Referrer-Policy": {"x"}}
	rs.Match("/x").Apply(h, false)
	if h.Get("Cache-Control") != "public, max-age=60" || h.Get("Referrer-Policy") != "" || h.Get("X-A") != "1" {
		t.Fatalf("applied: %v", h)
	}
	h = http.Header{"Cache-Control": {"no-cache"}}
	rs.Match("/x").Apply(h, true)
	if h.Get("Cache-Control") != "no-cache" || h.Get("X-A") != "1" {
		t.Fatalf("on an error: %v", h)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		file string
		line int
		msg  string
	}{
		{"  X-A: 1\n", 1, "before any path"},
		{"/a\n  Set-Cookie: a=b\n", 2, "Set-Cookie cannot be set"},
		{"/a\n  content-length: 5\n", 2, "Content-Length cannot"},
		{"/a\n  Transfer-Encoding: chunked\n", 2, "Transfer-Encoding"},
		{"/a\n  Content-Range: bytes 0-1/2\n", 2, "Content-Range"},
		{"/a\n  Service-Worker-Allowed: /\n", 2, "Service-Worker-Allowed"},
		{"/a\n  X-Verity-Root: x\n", 2, "X-Verity-Root"},
		{"/a\n  ! ETag\n", 2, "Etag cannot"},
		{"/a\n  Sec-WebSocket-Accept: x\n", 2, "Sec-Websocket-Accept"},
		{"# c\n/a\n  no colon here\n", 3, "want \"Name: value\""},
		{"/a\n  Bad Name: x\n", 2, "not a valid token"},
		{"/a\n  X-A: a\x01b\n", 2, "control character"},
		{"a/b\n", 1, "does not start with /"},
		{"https://x.example/*\n", 1, "does not start with /"},
		{"/a/*/b/*\n", 1, "more than one *"},
		{"/a/:x/:x\n", 1, "twice"},
		{"/a/:x.html\n", 1, "placeholder"},
		{"/a?b\n", 1, "query"},
	} {
		_, err := Parse([]byte(c.file))
		var le *LineError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalid) || le.Line != c.line || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Parse(%q) = %v, want line %d with %q", c.file, err, c.line, c.msg)
		}
	}
	if _, err := Parse(make([]byte, MaxSize+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("an oversized file: %v", err)
	}
	// Content-Security-Policy and CORS are the site's to set.
	if _, err := Parse([]byte("/*\n  Content-Security-Policy: default-src 'self'\n  Access-Control-Allow-Origin: *\n")); err != nil {
		t.Errorf("allowed headers refused: %v", err)
	}
}

// The published pattern means the same in JavaScript: it is made of
// literals escaped by regexp.QuoteMeta, ([^/]+) and (.*) only.
func TestPatternIsPortable(t *testing.T) {
	rs, err := Parse([]byte("/a.b+c(d)[e]{f}|g^h$i\\j/:x/*\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `^/a\.b\+c\(d\)\[e\]\{f\}\|g\^h\$i\\j/([^/]+)/(.*)$`
	if rs[0].Pattern != want {
		t.Fatalf("pattern %s, want %s", rs[0].Pattern, want)
	}
	if !regexp.MustCompile(rs[0].Pattern).MatchString(`/a.b+c(d)[e]{f}|g^h$i\j/seg/rest/of`) {
		t.Fatal("no match")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example), "/blog/x")
	f.Add([]byte("/a/:x/*\n  X-A: :x :splat\n"), "/a/b/c/d")
	f.Add([]byte("  X: 1\n"), "/")
	f.Fuzz(func(t *testing.T, b []byte, path string) {
		rs, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		res := rs.Match(path)
		for n, v := range res.Set {
			if Denied(n) {
				t.Fatalf("denied header %s set", n)
			}
			if !validValue(strings.Join(v, "")) {
				t.Fatalf("header %s = %q", n, v)
			}
		}
		for _, n := range res.Remove {
			if Denied(n) {
				t.Fatalf("denied header %s removed", n)
			}
		}
	})
}
