package redirects

import (
	"errors"
	"strings"
	"testing"
)

// The specification's example file (web-redirects-file, "Test fixtures").
const specExample = `/redirect-one /one.html
/301-redirect-one /one.html 301
/302-redirect-two /two.html 302
/200-index /index.html 200
/posts/:year/:month/:day/:title /articles/:year/:month/:day/:title 301
/splat/* /redirected-splat/:splat 301
/not-found/* /404.html 404
/gone/* /410.html 410
/unavail/* /451.html 451
/* /index.html 200
`

func TestSpecExample(t *testing.T) {
	rs, err := Parse([]byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 10 {
		t.Fatalf("%d rules", len(rs))
	}
	for _, c := range []struct {
		path, to string
		status   int
	}{
		{"/redirect-one", "/one.html", 301},
		{"/301-redirect-one", "/one.html", 301},
		{"/302-redirect-two", "/two.html", 302},
		{"/200-index", "/index.html", 200},
		{"/posts/06/15/2022/hello-world", "/articles/06/15/2022/hello-world", 301},
		{"/splat/one.html", "/redirected-splat/one.html", 301},
		{"/splat/a/b/c", "/redirected-splat/a/b/c", 301},
		{"/not-found/x", "/404.html", 404},
		{"/gone/x", "/410.html", 410},
		{"/unavail/x", "/451.html", 451},
		{"/some/spa/route", "/index.html", 200},
		{"/", "/index.html", 200},
		{"/redirect-one/", "/one.html", 301},          // a trailing slash matches
		{"/posts/06/15/2022", "/index.html", 200},     // too few segments: the catch-all
		{"/posts/06/15/2022/x/y", "/index.html", 200}, // too many
		{"/REDIRECT-ONE", "/index.html", 200},         // case matters
	} {
		to, status, ok := rs.Match(c.path)
		if !ok || to != c.to || status != c.status {
			t.Errorf("Match(%q) = %q %d %v, want %q %d", c.path, to, status, ok, c.to, c.status)
		}
	}
}

func TestNoMatch(t *testing.T) {
	rs, err := Parse([]byte("# comment\r\n\r\n/old /new\r\n/blog/:slug https://example.com/:slug 302\n"))
	if err != nil {
		t.Fatal(err)
	}
	if to, status, ok := rs.Match("/blog/hello"); !ok || to != "https://example.com/hello" || status != 302 {
		t.Fatalf("URL target: %q %d %v", to, status, ok)
	}
	for _, p := range []string{"/older", "/blog", "/blog/", "/x/old", ""} {
		if to, _, ok := rs.Match(p); ok {
			t.Errorf("Match(%q) = %q, want no match", p, to)
		}
	}
}

// A splat or placeholder cannot turn a path target into another origin.
func TestNoOpenRedirect(t *testing.T) {
	rs, err := Parse([]byte("/go/* /:splat 302\n/p/:x /:x 302\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/go//evil.example/x", "/go/\\evil.example", "/go///evil.example"} {
		if to, _, ok := rs.Match(p); !ok || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
			t.Errorf("Match(%q) = %q", p, to)
		}
	}
}

func TestPlaceholdersLongestFirst(t *testing.T) {
	rs, err := Parse([]byte("/u/:id/:identity /users/:identity-:id 302\n"))
	if err != nil {
		t.Fatal(err)
	}
	if to, _, _ := rs.Match("/u/7/ann"); to != "/users/ann-7" {
		t.Fatalf("got %q", to)
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"/a", "line 1"},
		{"/a /b 301 extra", "too many fields"},
		{"/a /b 418", "status"},
		{"/a /b abc", "status"},
		{"a /b", "starting with /"},
		{"/a?x=1 /b", "query"},
		{"/a/*/b /c", "only at the end"},
		{"/a b", "neither a path"},
		{"/a https://x.example/ 200", "redirect status"},
		{"\n\n/ok /fine\n/bad", "line 4"},
		{strings.Repeat("#", MaxSize+1), "bytes"},
		{strings.Repeat("/a /b\n", MaxRules+1), "rules"},
	} {
		_, err := Parse([]byte(c.file))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.30q) = %v, want ErrInvalid mentioning %q", c.file, err, c.want)
		}
	}
}

// Whatever the file and the path, Parse and Match neither panic nor
// produce a target that is not a path or an http(s) URL.
func FuzzParseMatch(f *testing.F) {
	f.Add([]byte(specExample), "/posts/1/2/3/x")
	f.Add([]byte("/:a/:b/* /:b/:a/:splat 302"), "/x/y/z/w")
	f.Fuzz(func(t *testing.T, file []byte, path string) {
		rs, err := Parse(file)
		if err != nil {
			return
		}
		to, status, ok := rs.Match(path)
		if !ok {
			return
		}
		if !validStatus(status) {
			t.Fatalf("status %d", status)
		}
		if !strings.HasPrefix(to, "/") && !strings.HasPrefix(to, "http://") && !strings.HasPrefix(to, "https://") {
			t.Fatalf("target %q", to)
		}
		if strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
			t.Fatalf("a path target leaves the origin: %q", to)
		}
	})
}

// Redirect chains that never end are found, with the lines that make
// them; rewrites, error pages, URLs and chains that end are not loops.
// (Here no path exists; TestLoopEndsAtExistingPaths has a site.)
func TestLoop(t *testing.T) {
	for _, c := range []struct {
		file, loop string // loop: "" for none, else a part of the error
	}{
		{specExample, ""},
		{"/a /b\n/b /c 302\n/c /d 307\n", ""},
		{"/old/* /new/:splat 301\n/new/* /index.html 200\n", ""},
		{"/go/* https://example.com/:splat 302\n", ""},
		{"/x /x 301\n", "line 1 redirects /x to /x"},
		{"# moved\n/a /b\n/b /a 302\n", "line 2 redirects /a to /b, line 3 redirects /b to /a"},
		{"/blog/:slug /posts/:slug 301\n/posts/:id /blog/:id 301\n", "line 2 redirects /posts/_verity-loop-check_ to /blog/_verity-loop-check_"},
		{"/* /en/:splat 302\n", "more than 8 redirects"},
		{"/en/* /en/404.html 404\n/* /en/:splat 302\n", ""}, // the fix the error suggests
		{"/a /b?x=1\n/b /a\n", "comes back to /a"},
	} {
		rs, err := Parse([]byte(c.file))
		if err != nil {
			t.Fatalf("%q: %v", c.file, err)
		}
		err = rs.Loop(nil)
		switch {
		case c.loop == "" && err != nil:
			t.Errorf("%q: %v, want no loop", c.file, err)
		case c.loop != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.loop)):
			t.Errorf("%q: %v, want a loop naming %q", c.file, err, c.loop)
		}
	}
}

// A chain ends at a path the site has: the usual "send missing pages
// home" rules are no loops when their targets exist, and are when they
// do not.
func TestLoopEndsAtExistingPaths(t *testing.T) {
	site := map[string]bool{"/": true, "/index.html": true, "/blog/": true, "/docs/a/": true, "/en/": true}
	exists := func(p string) bool { return site[p] }
	for _, c := range []struct {
		file string
		loop bool
	}{
		{"/* / 302\n", false},
		{"/* /index.html 301\n", false},
		{"/blog/* /blog/ 301\n", false},
		// A missing /docs/x/ matches again (a trailing slash matches) and
		// redirects to itself: a loop for every missing page.
		{"/docs/:page /docs/:page/ 301\n", true},
		{"/docs/:page/ /docs/:page/index.html 301\n", false}, // ends at a file, missing or not: no rule matches it
		{"/* /missing.html 301\n", true},
		{"/* /en/:splat 302\n", true}, // /en/x is missing for a missing x
		{"/a /b\n/b /a\n", true},
	} {
		rs, err := Parse([]byte(c.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.Loop(exists); (err != nil) != c.loop {
			t.Errorf("%q: %v, want loop %v", c.file, err, c.loop)
		}
	}
}
