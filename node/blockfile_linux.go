package node

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// createLinked writes data into an unnamed file in dir (O_TMPFILE),
// starts its writeback and links it in as path, so the name appears
// only with every byte behind it, and a write cut short leaves no file
// behind. It reports false, writing nothing, when path exists (another
// import wrote the same block meanwhile). Where O_TMPFILE or the link
// through /proc is not available it falls back to a file renamed from
// blocks/.temp.
func createLinked(dir, path string, data []byte) (bool, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return true, createRenamed(filepath.Join(filepath.Dir(dir), ".temp"), path, data)
		}
		return false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return false, err
	}
	startFileWriteback(f)
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM):
		// no /proc: the portable way
		return true, createRenamed(filepath.Join(filepath.Dir(dir), ".temp"), path, data)
	}
	return false, &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
}

// startFileWriteback asks the kernel to start writing f to disk without
// waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE), so the disk works
// while the next blocks are stored and syncStore finds less left to
// flush. It guarantees nothing: syncStore does.
func startFileWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
