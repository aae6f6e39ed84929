package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	flatfs "github.com/ipfs/go-ds-flatfs"
)

// Imports write block files themselves, into flatfs's layout
// (blocks/<shard>/<key>.data), rather than through a flatfs batch: per
// block one stat (is it held?), a file made in blocks/.temp/w<writer> and written,
// its writeback started on the same descriptor (startFileWriteback), and
// the file given its name unless a file has it (renameat2
// RENAME_NOREPLACE on Linux, a link elsewhere), so a name appears only
// once it holds all its bytes.
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
		if err := createRenamed(tmp, path, data); err != nil {
			return false, err
		}
		b.extra.Add(int64(len(data)) - old)
		return true, nil
	}
	linked, err := createLinked(tmp, path, data)
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

// createRenamed writes data into a new file in tmpDir, starts its
// writeback and renames it to path.
func createRenamed(tmpDir, path string, data []byte) error {
	f, err := os.CreateTemp(tmpDir, "block-")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	startFileWriteback(f)
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
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
