package node

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// syncStore makes every block written so far durable, with their
// directories: one syncfs(2) of the filesystem holding the store, which
// flushes its dirty data and metadata at once (the files of a CAR are not
// synced one by one). paths, the files written, are for the portable
// twin (sync_other.go).
func (n *Node) syncStore(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	d, err := os.Open(filepath.Join(n.cfg.DataDir, blocksDir))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}
