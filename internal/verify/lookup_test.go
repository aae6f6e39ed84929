//go:build !js

package verify_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/verify"
)

// Lookup resolves a name in a directory entity from the blocks the Reader
// verified, for plain and HAMT-sharded directories: the CID it returns is
// the one a request for the full path resolves to.
func TestLookup(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), []byte("alpha"))
	writeFile(t, filepath.Join(dir, "sub", "b.txt"), []byte("beta"))
	for i := 0; i < 300; i++ {
		writeFile(t, filepath.Join(dir, "big", fmt.Sprintf("entry-%04d.txt", i)), []byte(fmt.Sprint(i)))
	}
	f := newFixture(t, dir, importer.Options{HAMTShardingSize: 1024})
	cases := []struct {
		dir   []string
		name  string
		found bool
	}{
		{nil, "a.txt", true},
		{nil, "sub", true},
		{nil, "missing", false},
		{[]string{"sub"}, "b.txt", true},
		{[]string{"big"}, "entry-0007.txt", true},
		{[]string{"big"}, "entry-0299.txt", true},
		{[]string{"big"}, "entry-9999.txt", false},
	}
	for _, tc := range cases {
		t.Run(filepath.Join(append(tc.dir, tc.name)...), func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: tc.dir}
			r := verify.NewReader(bytes.NewReader(f.fetch(req)), req, verify.Options{})
			ent, err := r.Entity()
			if err != nil || ent.Kind != verify.KindDirectory {
				t.Fatalf("Entity = %v, %v; want a directory", ent, err)
			}
			c, found, err := r.Lookup(tc.name)
			if err != nil || found != tc.found {
				t.Fatalf("Lookup(%q) = %v, %v, %v; want found=%v", tc.name, c, found, err, tc.found)
			}
			if !found {
				return
			}
			full := verify.Request{Root: f.root, Path: append(append([]string{}, tc.dir...), tc.name)}
			want, _, err := verifyAll(f.fetch(full), full)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Equal(want.CID) {
				t.Fatalf("Lookup(%q) = %s, the full path resolves to %s", tc.name, c, want.CID)
			}
		})
	}
	// A file entity has no entries to look up.
	req := verify.Request{Root: f.root, Path: []string{"a.txt"}}
	r := verify.NewReader(bytes.NewReader(f.fetch(req)), req, verify.Options{})
	if _, err := r.Entity(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup("x"); !errors.Is(err, verify.ErrBadRequest) {
		t.Fatalf("Lookup in a file: %v, want ErrBadRequest", err)
	}
}
