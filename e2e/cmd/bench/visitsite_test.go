package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithLoader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<html><HEAD><title>x</title></HEAD><body>b</body></html>", "<html><HEAD><title>x</title>" + loaderTag + "\n</HEAD><body>b</body></html>"},
		{"<html><body class=a>b</body></html>", "<html>" + loaderTag + "\n<body class=a>b</body></html>"},
		{"just text", loaderTag + "\njust text"},
	} {
		if got := string(withLoader([]byte(tc.in))); got != tc.want {
			t.Errorf("withLoader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCopyVisitSite(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{
		"index.html":     "<html><head></head><body><img src=img/a.png></body></html>",
		"img/a.png":      strings.Repeat("p", 1000),
		"has-loader.txt": "x",
	}
	for name, body := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "site")
	site, err := copyVisitSite(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !strings.Contains(string(html), loaderTag) {
		t.Fatalf("index.html without the loader: %s", html)
	}
	if site.Resources != 0 || site.Bytes != 0 {
		t.Errorf("site %+v: counted before a visit", site)
	}
	if b, err := os.ReadFile(filepath.Join(dir, visitOwnSmall)); err != nil || len(b) != 2<<10 {
		t.Errorf("small asset: %d bytes, %v", len(b), err)
	}
	// A page that loads the loader already is left as it is.
	src2 := t.TempDir()
	page := `<html><head><script src="/verity.js" async></script></head></html>`
	if err := os.WriteFile(filepath.Join(src2, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(t.TempDir(), "site")
	if _, err := copyVisitSite(src2, dir2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir2, "index.html")); string(b) != page {
		t.Errorf("index.html changed: %s", b)
	}
	if _, err := copyVisitSite(t.TempDir(), filepath.Join(t.TempDir(), "site")); err == nil {
		t.Error("a site without index.html was taken")
	}
}
