package web

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var pages, largest int
	err := fs.WalkDir(Demo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Demo, p)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", p)
		}
		largest = max(largest, len(b))
		if strings.HasSuffix(p, ".html") {
			pages++
			if !bytes.Contains(b, []byte(`<script src="/verity.js" async></script>`)) {
				t.Errorf("%s lacks the verity.js script tag", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(Demo, "index.html"); err != nil {
		t.Fatal("no index.html at the root of Demo")
	}
	if pages < 2 || largest <= 1<<20 {
		t.Fatalf("%d pages, largest file %d bytes: want ≥ 2 pages and a file over 1 MiB", pages, largest)
	}
}
