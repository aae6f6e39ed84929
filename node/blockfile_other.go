//go:build !linux

package node

import (
	"os"
	"path/filepath"
)

// createLinked writes data into a new file in tmpDir and gives it the
// name path unless path exists (on Linux: blockfile_linux.go). It
// reports false, writing nothing at path, when path exists.
func (b *blockFiles) createLinked(tmpDir, path string, data []byte) (bool, error) {
	tmp, err := b.writeTemp(tmpDir, data)
	if err != nil {
		return false, err
	}
	return linkNoReplace(tmp, path)
}

// writeTemp writes data into a new file in dir, through the page cache,
// and returns its path (on Linux, blockfile_linux.go, most of it is
// written with O_DIRECT).
func (b *blockFiles) writeTemp(dir string, data []byte) (string, error) {
	for range 1000 {
		path := b.tempName(dir)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return "", err
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return "", err
		}
		return path, nil
	}
	return "", &os.PathError{Op: "open", Path: filepath.Join(dir, "block-*"), Err: os.ErrExist}
}

// spreadSubdirs does nothing here (on Linux: blockfile_linux.go).
func spreadSubdirs(dir string) {}
