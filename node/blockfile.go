package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	flatfs "github.com/ipfs/go-ds-flatfs"
)

// Imports write block files themselves, into flatfs's layout
// (blocks/<shard>/<key>.data), rather than through a flatfs batch: per
// block one stat (is it held?), a file made in blocks/.temp/w<writer> and
// written (on Linux its 4096-byte-aligned part with O_DIRECT, straight to
// the disk, the tail through the page cache with its writeback started,
// startWriteback; writeTemp), and the file given its name unless a
// file has it (renameat2 RENAME_NOREPLACE on Linux, a link elsewhere), so
// a name appears only once it holds all its bytes.
// flatfs would add a mkdir per block, two more stats, another open for
// the writeback, and, in a store that grows fast, a rewrite of its
// disk-usage file every few blocks.
//
// flatfs does not see these files come: its disk usage counts the bytes
// it wrote and subtracts those of every file it deletes. The node keeps
// the difference, extraUsage, and storedBytes adds it. At Close the
// difference is folded into the disk-usage file flatfs has just saved.
// While the difference is not saved, a marker in DataDir/tmp says so; a
// node killed meanwhile finds it at the next start, which removes
// flatfs's saved figure (flatfs then counts the store again) as after an
// unfinished import (clearTmp).

// blockFiles writes block files under one flatfs store.
type blockFiles struct {
	root  string   // DataDir/blocks
	tmp   string   // DataDir/tmp, for the marker
	dirs  sync.Map // shard and temporary directories known to exist
	extra atomic.Int64

	spreadOnce sync.Once // .temp marked (spreadSubdirs)

	markMu sync.Mutex
	marked bool

	log *slog.Logger  // nil: nothing logged
	seq atomic.Uint64 // names the temporary files

	// O_DIRECT (Linux, blockfile_linux.go): noDirect once the filesystem
	// refused it, refusals how often it did (once, unless writers raced);
	// open opens a temporary file (unix.Open when nil).
	noDirect atomic.Bool
	refusals atomic.Int64
	open     func(path string, flags int, perm uint32) (int, error)
}

// directAlign is the alignment of the memory, offset and length of an
// O_DIRECT write: the largest logical block size of common disks, so a
// multiple of any of theirs. A filesystem asking for more refuses the
// write (EINVAL), and its files are written through the page cache.
const directAlign = 4096

// alignedBuffer returns n bytes starting at a multiple of directAlign in
// memory, of capacity n.
func alignedBuffer(n int) []byte {
	buf := make([]byte, n+directAlign)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	return buf[off : off+n : off+n]
}

// isAligned reports whether b starts at a multiple of directAlign in memory.
func isAligned(b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(directAlign-1) == 0
}

// tempName is the path of a new temporary file in dir; the file is made
// with O_EXCL, so a name left by a killed node is not reused (flatfs
// removes them when it opens the store anyway).
func (b *blockFiles) tempName(dir string) string {
	return filepath.Join(dir, "block-"+strconv.FormatUint(b.seq.Add(1), 36))
}

// usageMarker is the marker's name in DataDir/tmp.
const usageMarker = "usage.run"

// write stores data as the file at path, in the shard directory dir,
// making it in the temporary directory of writer (tempDir); replace says
// a file of another size is there (a write a power loss cut short),
// which is replaced. It reports false, writing nothing, when another
// import wrote the file meanwhile.
func (b *blockFiles) write(writer int, dir, path string, data []byte, replace bool) (bool, error) {
	if err := b.mark(); err != nil {
		return false, err
	}
	if err := b.mkdir(dir); err != nil {
		return false, err
	}
	tmp, err := b.tempDir(writer)
	if err != nil {
		return false, err
	}
	if replace {
		var old int64
		if fi, err := os.Stat(path); err == nil {
			old = fi.Size()
		}
		if err := b.createRenamed(tmp, path, data); err != nil {
			return false, err
		}
		b.extra.Add(int64(len(data)) - old)
		return true, nil
	}
	linked, err := b.createLinked(tmp, path, data)
	if err != nil {
		return false, err
	}
	if linked {
		b.extra.Add(int64(len(data)))
	}
	return linked, nil
}

// tempDir returns blocks/.temp/w<writer>, made if needed: each of the
// goroutines writing an import's batches makes its files in a directory
// of its own. Making a file holds its directory's lock while the
// filesystem finds the file an inode, which on ext4 without a journal
// means stepping over every inode of the group freed in the last minute
// (or five, while its table is not written back): in one directory the
// writers took turns, and the one waiting spun on the lock.
//
// .temp is marked first (spreadSubdirs), so ext4 places these
// directories, and with them the inodes of the files made in them, in
// block groups with free inodes to spare, rather than next to the
// store's directories: where a store's or its neighbours' files were
// just deleted (a collection, the previous run of a benchmark), finding
// each inode there stepped over all of those (a 268 MB pin's CPU time,
// in alternating runs: 0.9-1.3 s against 1.3-2.3 s). flatfs removes
// .temp, with what is under it, when it opens the store.
func (b *blockFiles) tempDir(writer int) (string, error) {
	dir := filepath.Join(b.root, ".temp", "w"+strconv.Itoa(writer))
	if _, ok := b.dirs.Load(dir); ok {
		return dir, nil
	}
	b.spreadOnce.Do(func() { spreadSubdirs(filepath.Join(b.root, ".temp")) })
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	b.dirs.Store(dir, struct{}{})
	return dir, nil
}

// mkdir makes the shard directory dir unless it is known to exist.
func (b *blockFiles) mkdir(dir string) error {
	if _, ok := b.dirs.Load(dir); ok {
		return nil
	}
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		if fi, err := os.Stat(dir); err == nil {
			b.extra.Add(fi.Size()) // as flatfs counts a directory it makes
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	b.dirs.Store(dir, struct{}{})
	return nil
}

// mark leaves the marker in DataDir/tmp before the first file is written.
func (b *blockFiles) mark() error {
	b.markMu.Lock()
	defer b.markMu.Unlock()
	if b.marked {
		return nil
	}
	f, err := os.Create(filepath.Join(b.tmp, usageMarker))
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	b.marked = true
	return nil
}

// createRenamed writes data into a new file in tmpDir (writeTemp) and
// renames it to path.
func (b *blockFiles) createRenamed(tmpDir, path string, data []byte) error {
	tmp, err := b.writeTemp(tmpDir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// linkNoReplace gives the file tmp the name path unless path exists,
// then removes the name tmp; it reports false when path exists. On a
// filesystem without hard links it renames tmp to path.
func linkNoReplace(tmp, path string) (bool, error) {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return true, os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		os.Remove(tmp)
		return false, nil
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}

// save folds the bytes written outside flatfs into the disk-usage file
// flatfs saved at its Close, then removes the marker. If that file
// cannot be updated, it is removed: flatfs counts the store again at the
// next start.
func (b *blockFiles) save() error {
	b.markMu.Lock()
	defer b.markMu.Unlock()
	if !b.marked {
		return nil
	}
	path := filepath.Join(b.root, flatfs.DiskUsageFile)
	if err := addDiskUsage(path, b.extra.Load()); err != nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("node: disk usage: %w", err)
		}
	}
	b.extra.Store(0)
	b.marked = false
	return os.Remove(filepath.Join(b.tmp, usageMarker))
}

// addDiskUsage adds n to the figure in flatfs's disk-usage file.
func addDiskUsage(path string, n int64) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	var du int64
	if err := json.Unmarshal(v["diskUsage"], &du); err != nil {
		return err
	}
	if du += n; du < 0 {
		return errors.New("negative disk usage")
	}
	if v["diskUsage"], err = json.Marshal(du); err != nil {
		return err
	}
	if raw, err = json.Marshal(v); err != nil {
		return err
	}
	return writeFileAtomic(path, raw, 0o644)
}
