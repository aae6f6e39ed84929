//go:build !unix

package node

// diskSpace is unknown on this platform.
func diskSpace(string) (total, free int64) { return 0, 0 }
