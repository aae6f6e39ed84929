//go:build !linux

package node

// refuseDirectOpen is never called here: nothing is written with O_DIRECT.
func refuseDirectOpen(path string, flags int, perm uint32) (int, error) {
	panic("not used")
}
