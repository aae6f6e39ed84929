package s3api

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/importer"
)

// importFile returns the CID and cumulative size of one file's DAG.
func importFile(t *testing.T, body []byte) (cid.Cid, uint64) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	car, err := os.CreateTemp(t.TempDir(), "*.car")
	if err != nil {
		t.Fatal(err)
	}
	defer car.Close()
	root, err := importer.WriteCAR(context.Background(), p, car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	size, err := dagSize(car, root)
	if err != nil {
		t.Fatal(err)
	}
	return root, size
}

// A bucket's root is the root of importing the same tree from disk, for a
// basic directory, nested ones, and a directory past the HAMT threshold.
func TestBucketRootIsTheImportedTree(t *testing.T) {
	small, smallSize := importFile(t, []byte("x"))
	big, bigSize := importFile(t, []byte(strings.Repeat("verity", 100_000))) // a dag-pb root
	for name, keys := range map[string][]string{
		"empty":  nil,
		"nested": {"a/b/c.txt", "a/d.txt", "e.txt", "big.bin"},
		// 1,200 names of 200 bytes: about 280 KB of links, past boxo's
		// 256 KiB threshold, so the top directory is a HAMT.
		"sharded": func() []string {
			var ks []string
			for i := range 1200 {
				ks = append(ks, fmt.Sprintf("%0196d.txt", i))
			}
			return ks
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			objs := map[string]*object{}
			for _, k := range keys {
				body, c, size := []byte("x"), small, smallSize
				if k == "big.bin" {
					body, c, size = []byte(strings.Repeat("verity", 100_000)), big, bigSize
				}
				p := filepath.Join(dir, filepath.FromSlash(k))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, body, 0o644); err != nil {
					t.Fatal(err)
				}
				objs[k] = &object{CID: c.String(), TSize: size}
			}
			want, err := importer.WriteCAR(context.Background(), dir, io.Discard, importer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := bucketRoot(objs)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("bucket root %s, imported %s", got, want)
			}
		})
	}
}

func TestStorageCharge(t *testing.T) {
	month := 30 * 24 * time.Hour
	for _, c := range []struct {
		size  int64
		d     time.Duration
		price uint64
		want  uint64
	}{
		{1 << 30, month, 1 << 30, 1 << 30},
		{1 << 30, month / 2, 1000, 500},
		{1 << 40, month, 1 << 30, 1 << 40},
		{1, time.Second, 1 << 30, 0}, // rounded down: time adds up until it is a byte
		{0, month, 1 << 30, 0},
		{1 << 50, 100 * month, 1 << 60, 1 << 62}, // bounded
	} {
		if got := storageCharge(c.size, c.d, c.price); got != c.want {
			t.Errorf("storageCharge(%d, %v, %d) = %d, want %d", c.size, c.d, c.price, got, c.want)
		}
	}
}
