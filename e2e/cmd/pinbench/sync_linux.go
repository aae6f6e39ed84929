package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncAll flushes every filesystem, so a timed step does not pay for
// writes made before it.
func syncAll() { syscall.Sync() }

// syncFS flushes the filesystem holding dir (syncfs(2)).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
