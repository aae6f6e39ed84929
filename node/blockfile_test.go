package node_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/node"
)

// A block file gets its name only whole, never replaces a file another
// import named first, and leaves nothing in the temporary directory,
// through the Linux path (createLinked) and the portable one
// (linkNoReplace).
func TestBlockFileNamedOnceWhole(t *testing.T) {
	for name, create := range map[string]func(tmpDir, path string, data []byte) (bool, error){
		"createLinked": node.CreateLinked,
		"linkNoReplace": func(tmpDir, path string, data []byte) (bool, error) {
			f, err := os.CreateTemp(tmpDir, "block-")
			if err != nil {
				return false, err
			}
			if _, err := f.Write(data); err != nil {
				return false, err
			}
			if err := f.Close(); err != nil {
				return false, err
			}
			return node.LinkNoReplace(f.Name(), path)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tmp := filepath.Join(dir, ".temp")
			if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "KEY.data")
			first := bytes.Repeat([]byte("first "), 1000)
			if wrote, err := create(tmp, path, first); err != nil || !wrote {
				t.Fatalf("first write: %v, %v", wrote, err)
			}
			if wrote, err := create(tmp, path, []byte("second")); err != nil || wrote {
				t.Fatalf("second write of a named file: wrote %v, %v; want false", wrote, err)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, first) {
				t.Fatalf("the named file holds %d bytes (%v); want the first write's %d", len(got), err, len(first))
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Fatalf("%d files left in the temporary directory", len(ents))
			}
		})
	}
}

// The bytes an import writes itself are folded into flatfs's saved disk
// usage, its other fields kept; a file that cannot be read is an error
// (the caller then removes it, and flatfs counts the store again).
func TestAddDiskUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diskUsage.cache")
	if err := node.AddDiskUsage(path, 10); err == nil {
		t.Fatal("no disk-usage file: no error")
	}
	if err := os.WriteFile(path, []byte(`{"diskUsage":1000,"accuracy":"initial-exact"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.AddDiskUsage(path, 24); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != `{"accuracy":"initial-exact","diskUsage":1024}` {
		t.Fatalf("disk-usage file: %s", got)
	}
	if err := node.AddDiskUsage(path, -2000); err == nil {
		t.Fatal("a negative figure: no error")
	}
	if err := os.WriteFile(path, []byte(`not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.AddDiskUsage(path, 1); err == nil {
		t.Fatal("a file flatfs did not write: no error")
	}
}
