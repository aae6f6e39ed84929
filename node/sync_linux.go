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

// startWriteback asks the kernel to start writing the files at paths to
// disk without waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE), so
// the disk works while the next blocks are stored and syncStore finds
// less left to flush. It guarantees nothing: syncStore does.
func startWriteback(paths []string) {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		f.Close()
	}
}
