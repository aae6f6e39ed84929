package node

import "golang.org/x/sys/unix"

// refuseDirectOpen is unix.Open on a filesystem that refuses O_DIRECT.
func refuseDirectOpen(path string, flags int, perm uint32) (int, error) {
	if flags&unix.O_DIRECT != 0 {
		return -1, unix.EINVAL
	}
	return unix.Open(path, flags, perm)
}
