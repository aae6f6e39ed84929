//go:build !linux

package node

import "os"

// createLinked writes data into a new file in tmpDir and gives it the
// name path unless path exists (on Linux: blockfile_linux.go). It
// reports false, writing nothing at path, when path exists.
func createLinked(tmpDir, path string, data []byte) (bool, error) {
	f, err := os.CreateTemp(tmpDir, "block-")
	if err != nil {
		return false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return false, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return false, err
	}
	return linkNoReplace(f.Name(), path)
}

// startFileWriteback does nothing here; on Linux it starts the disk
// writing f early (blockfile_linux.go).
func startFileWriteback(f *os.File) {}

// spreadSubdirs does nothing here (on Linux: blockfile_linux.go).
func spreadSubdirs(dir string) {}
