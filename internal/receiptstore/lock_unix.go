//go:build unix

package receiptstore

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, without waiting.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return ErrLocked
	}
	return nil
}
