package node

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openStoreSync opens the directory of the store for syncStore. Call it
// before writing the blocks the sync is to make durable: syncfs(2)
// reports the writeback errors since the file it is given was opened,
// and only those another syncfs has not reported already when it was
// opened. A directory opened only at the sync would miss the failed
// writeback of this import's files once another import's sync (or any
// process's syncfs of the filesystem) had reported it.
func (n *Node) openStoreSync() (*os.File, error) {
	return os.Open(filepath.Join(n.cfg.DataDir, blocksDir))
}

// syncStore makes every block written so far durable, with their
// directories: one syncfs(2) of the filesystem holding the store, which
// flushes its dirty data and metadata at once (the files of a CAR are not
// synced one by one), through d (openStoreSync, opened before the
// writes). paths, the files written, are for the portable twin
// (sync_other.go).
func (n *Node) syncStore(d *os.File, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}
