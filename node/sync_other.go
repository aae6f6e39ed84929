//go:build !linux

package node

import (
	"os"
	"path/filepath"
)

// syncStore makes the block files at paths durable, with their
// directories and the store's root, fsyncing each once after all were
// written (on Linux one syncfs does it all: sync_linux.go).
func (n *Node) syncStore(_ *os.File, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	root := filepath.Join(n.cfg.DataDir, blocksDir)
	dirs := map[string]bool{root: true}
	for _, p := range paths {
		if err := syncPath(p); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

// openStoreSync opens the store's directory (syncStore's argument, used
// on Linux only).
func (n *Node) openStoreSync() (*os.File, error) {
	return os.Open(filepath.Join(n.cfg.DataDir, blocksDir))
}
