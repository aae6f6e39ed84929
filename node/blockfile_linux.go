package node

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// createLinked writes data into a new file in tmpDir (blocks/.temp/w<writer>),
// starts its writeback and renames it to path unless path exists
// (renameat2 RENAME_NOREPLACE), so the name appears only with every byte
// behind it; a file a killed node left in tmpDir is removed when flatfs
// opens the store. It reports false, writing nothing at path, when path
// exists (another import wrote the same block meanwhile).
//
// The file is made in tmpDir, one directory, rather than in the block's
// shard directory, as flatfs does: ext4 places a new inode near its
// directory's, and a thousand shard directories spread over as many
// block groups made each file cost a cold bitmap and inode table (a
// fresh 570 MB pin spent 1.7 s of CPU making unnamed O_TMPFILEs in the
// shard directories, 0.8 s in one directory, 0.3 s for named files
// there: an O_TMPFILE also goes through the filesystem's orphan list).
func createLinked(tmpDir, path string, data []byte) (bool, error) {
	f, err := os.CreateTemp(tmpDir, "block-")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return false, err
	}
	startFileWriteback(f)
	if err := f.Close(); err != nil {
		os.Remove(tmp)
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

// startFileWriteback asks the kernel to start writing f to disk without
// waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE), so the disk works
// while the next blocks are stored and syncStore finds less left to
// flush. It guarantees nothing: syncStore does.
func startFileWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
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
