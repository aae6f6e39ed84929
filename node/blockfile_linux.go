package node

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// createLinked writes data into a new file in tmpDir (blocks/.temp/w<writer>,
// writeTemp) and renames it to path unless path exists (renameat2
// RENAME_NOREPLACE), so the name appears only with every byte behind it;
// a file a killed node left in tmpDir is removed when flatfs opens the
// store. It reports false, writing nothing at path, when path exists
// (another import wrote the same block meanwhile).
//
// The file is made in tmpDir, one directory, rather than in the block's
// shard directory, as flatfs does: ext4 places a new inode near its
// directory's, and a thousand shard directories spread over as many
// block groups made each file cost a cold bitmap and inode table (a
// fresh 570 MB pin spent 1.7 s of CPU making unnamed O_TMPFILEs in the
// shard directories, 0.8 s in one directory, 0.3 s for named files
// there: an O_TMPFILE also goes through the filesystem's orphan list).
func (b *blockFiles) createLinked(tmpDir, path string, data []byte) (bool, error) {
	tmp, err := b.writeTemp(tmpDir, data)
	if err != nil {
		return false, err
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP):
		return linkNoReplace(tmp, path) // a filesystem without RENAME_NOREPLACE
	}
	os.Remove(tmp)
	if errors.Is(err, unix.EEXIST) {
		return false, nil
	}
	return false, &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
}

// errDirectRefused says the filesystem refused O_DIRECT.
var errDirectRefused = errors.New("the filesystem refuses O_DIRECT")

// writeTemp writes data into a new file in dir and returns its path.
//
// The part of data that is a multiple of directAlign long is written with
// O_DIRECT, from the buffer the import read the block into (blockBuffers
// are aligned): the disk takes it from there, the kernel does not copy it
// into the page cache, and the store's sync (syncStore) finds none of it
// left to flush; the write returns once the disk has it (in its cache:
// syncStore's flush makes it durable with the files' metadata). With
// several batch writers, several such writes are in flight. The tail
// (shorter than directAlign, a 256 KiB chunk has none) is written through
// the page cache, its writeback started at once (startWriteback):
// padding it to write it with O_DIRECT too, then cutting the file with
// ftruncate, would have ext4 read that last block back from the disk to
// zero its end (4 KiB read per file) and leave it dirty in the page
// cache anyway. A block shorter than directAlign, or in a buffer not
// aligned, is written whole through the page cache.
//
// A filesystem that refuses O_DIRECT (EINVAL at the open or the write:
// ramfs, some FUSE filesystems, a disk asking for a larger alignment) is
// not asked again: its files are written through the page cache, as
// before O_DIRECT was used.
func (b *blockFiles) writeTemp(dir string, data []byte) (string, error) {
	if len(data) >= directAlign && isAligned(data) && !b.noDirect.Load() {
		path, err := b.writeTempDirect(dir, data)
		if !errors.Is(err, errDirectRefused) {
			return path, err
		}
		b.refusals.Add(1)
		if b.noDirect.CompareAndSwap(false, true) && b.log != nil {
			b.log.Info("the store's filesystem refuses O_DIRECT; block files are written through the page cache", "dir", dir, "err", err)
		}
	}
	return b.writeTempBuffered(dir, data)
}

// writeTempDirect is writeTemp with O_DIRECT; it wraps errDirectRefused
// when the filesystem refuses it, leaving no file behind.
func (b *blockFiles) writeTempDirect(dir string, data []byte) (string, error) {
	fd, path, err := b.createTemp(dir, unix.O_DIRECT)
	if errors.Is(err, unix.EINVAL) {
		return "", fmt.Errorf("%w: %w", errDirectRefused, err)
	}
	if err != nil {
		return "", err
	}
	n := len(data) &^ (directAlign - 1)
	err = writeAll(fd, data[:n])
	if errors.Is(err, unix.EINVAL) {
		unix.Close(fd)
		unix.Unlink(path)
		return "", fmt.Errorf("%w: %w", errDirectRefused, &os.PathError{Op: "write", Path: path, Err: err})
	}
	if err == nil && n < len(data) {
		// O_DIRECT cleared (F_SETFL sets only the status flags: the
		// others it can change are unset), the tail through the page
		// cache.
		if _, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err == nil {
			if err = writeAll(fd, data[n:]); err == nil {
				startWriteback(fd, int64(n), int64(len(data)-n))
			}
		}
	}
	return path, closeTemp(fd, path, err)
}

// writeTempBuffered is writeTemp through the page cache, the file's
// writeback started at once.
func (b *blockFiles) writeTempBuffered(dir string, data []byte) (string, error) {
	fd, path, err := b.createTemp(dir, 0)
	if err != nil {
		return "", err
	}
	if err = writeAll(fd, data); err == nil {
		startWriteback(fd, 0, 0)
	}
	return path, closeTemp(fd, path, err)
}

// createTemp makes a new file in dir, opened for writing with flags
// added, and returns its descriptor and path.
func (b *blockFiles) createTemp(dir string, flags int) (int, string, error) {
	open := b.open
	if open == nil {
		open = unix.Open
	}
	for range 1000 {
		path := b.tempName(dir)
		fd, err := open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|flags, 0o600)
		switch {
		case err == nil:
			return fd, path, nil
		case errors.Is(err, unix.EEXIST), errors.Is(err, unix.EINTR):
			continue
		}
		return -1, "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	return -1, "", &os.PathError{Op: "open", Path: dir, Err: unix.EEXIST}
}

// closeTemp closes the temporary file fd, written with err, and removes
// it if err or its close is an error.
func closeTemp(fd int, path string, err error) error {
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		unix.Unlink(path)
		var pe *os.PathError
		if !errors.As(err, &pe) {
			err = &os.PathError{Op: "write", Path: path, Err: err}
		}
	}
	return err
}

// writeAll writes p to fd, through short writes and EINTR.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		p = p[n:]
	}
	return nil
}

// startWriteback asks the kernel to start writing n bytes of fd from off
// (n 0: to the end) to disk without waiting (sync_file_range(2),
// SYNC_FILE_RANGE_WRITE), so the disk works while the next blocks are
// stored and syncStore finds less left to flush. It guarantees nothing:
// syncStore does. It writes only dirty pages (never the file's
// metadata): a part written with O_DIRECT has none, so writeTemp does
// not call it for those.
func startWriteback(fd int, off, n int64) {
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// fsTopdirFL is FS_TOPDIR_FL (chattr +T).
const fsTopdirFL = 0x00020000

// spreadSubdirs marks dir as the top of a directory hierarchy (chattr
// +T), so ext4 places each directory made in it in a block group with
// more free inodes and blocks than average, rather than in dir's own
// (its "Orlov" allocator), and the files made in those directories get
// their inodes there. Filesystems without the flag refuse it; that is
// not an error, nothing changes then.
func spreadSubdirs(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	fl, err := unix.IoctlGetInt(int(d.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || fl&fsTopdirFL != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(d.Fd()), unix.FS_IOC_SETFLAGS, fl|fsTopdirFL)
}
