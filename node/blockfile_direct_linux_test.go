package node_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/verity-cdn/verity/node"
)

// directSizes are block sizes around the 4096-byte alignment O_DIRECT
// needs: nothing aligned, one aligned page and no tail, an aligned part
// and a tail, a whole chunk, a chunk and one byte.
var directSizes = []int{0, 1, 4095, 4096, 4097, 8191, 256 << 10, 256<<10 + 1}

// blockData is n bytes of a pattern, in a buffer from the import's pool
// (aligned, as the blocks an import reads are).
func blockData(n int, seed byte) []byte {
	b := node.BlockBufferForTest(n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>12)
	}
	return b
}

// residentPages is how many of the first pages of the file at path are
// in the page cache (mincore of a mapping of it, which faults nothing in).
func residentPages(t *testing.T, path string, pages int) int {
	t.Helper()
	if pages == 0 {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, pages*4096, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// bypassesCache reports whether O_DIRECT writes to dir's filesystem skip
// the page cache: tmpfs takes O_DIRECT (since Linux 6.6) but its files
// are the page cache.
func bypassesCache(t *testing.T, dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type != unix.TMPFS_MAGIC
}

// A block file's temporary file holds exactly the block's bytes, whatever
// its size against the 4096-byte alignment: the aligned part written with
// O_DIRECT (so none of it waits in the page cache for the store's sync),
// the tail through the page cache. Checked where the tests' files go and
// on /dev/shm (tmpfs) when present.
func TestBlockFileDirectWritesExactBytes(t *testing.T) {
	dirs := map[string]string{"tempdir": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		shm, err := os.MkdirTemp("/dev/shm", "verity-direct-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(shm) })
			dirs["shm"] = shm
		}
	}
	for fsName, dir := range dirs {
		for _, n := range directSizes {
			t.Run(fmt.Sprintf("%s/%d", fsName, n), func(t *testing.T) {
				w := node.NewTempFileWriterForTest(false)
				data := blockData(n, byte(n))
				want := bytes.Clone(data)
				name, err := w.Write(dir, data)
				if err != nil {
					t.Fatal(err)
				}
				defer os.Remove(name)
				if filepath.Dir(name) != dir {
					t.Fatalf("temporary file %s not in %s", name, dir)
				}
				if !w.Direct() {
					t.Fatalf("O_DIRECT given up on %s", dir)
				}
				if aligned := n / 4096; aligned > 0 && bypassesCache(t, dir) {
					if r := residentPages(t, name, aligned); r != 0 {
						t.Fatalf("%d of the %d aligned pages are in the page cache: not written with O_DIRECT", r, aligned)
					}
				}
				got, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("the file holds %d bytes, not the block's %d (or other bytes)", len(got), len(want))
				}
			})
		}
	}
}

// A block whose bytes are not in an aligned buffer (a block larger than
// the pool's buffers is its own allocation) is written whole through the
// page cache, exactly, without giving up O_DIRECT for the next ones.
func TestBlockFileUnalignedBufferWrittenBuffered(t *testing.T) {
	dir := t.TempDir()
	w := node.NewTempFileWriterForTest(false)
	buf := blockData(3*4096+1, 3)
	data := buf[1:] // 3*4096 bytes, off the alignment
	name, err := w.Write(dir, data)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(name)
	if got, _ := os.ReadFile(name); !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes, not the block's %d (or other bytes)", len(got), len(data))
	}
	if !w.Direct() {
		t.Fatal("an unaligned buffer made the writer give up O_DIRECT")
	}
}

// On a filesystem that refuses O_DIRECT (EINVAL at open, as ramfs or
// FUSE do; tmpfs takes it since Linux 6.6, so the refusal is injected),
// every block is written through the page cache, exactly, the writer
// stops trying O_DIRECT after the first refusal, and nothing is left of
// the refused attempt.
func TestBlockFileDirectRefusedFallsBack(t *testing.T) {
	dir := t.TempDir()
	w := node.NewTempFileWriterForTest(true)
	for i, n := range directSizes {
		data := blockData(n, byte(i))
		want := bytes.Clone(data)
		name, err := w.Write(dir, data)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: the file holds %d bytes, not the block's (or other bytes)", n, len(got))
		}
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		if n >= 4096 && w.Direct() {
			t.Fatalf("%d bytes: O_DIRECT still tried after the filesystem refused it", n)
		}
	}
	if refused := w.DirectRefusals(); refused != 1 {
		t.Fatalf("O_DIRECT refused %d times; want 1 (then not tried again)", refused)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d files left in the temporary directory", len(ents))
	}
}
