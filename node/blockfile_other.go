//go:build !linux

package node

import (
	"os"
	"path/filepath"
)

// createLinked writes data into a file in blocks/.temp and renames it to
// path (on Linux an unnamed O_TMPFILE is linked in: blockfile_linux.go).
func createLinked(dir, path string, data []byte) (bool, error) {
	return true, createRenamed(filepath.Join(filepath.Dir(dir), ".temp"), path, data)
}

// startFileWriteback does nothing here; on Linux it starts the disk
// writing f early (blockfile_linux.go).
func startFileWriteback(f *os.File) {}
