package unixfs

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed reports bytes that are not valid dag-pb or UnixFS.
	ErrMalformed = errors.New("unixfs: malformed")
	// ErrUnsupported reports a valid structure this package does not handle.
	ErrUnsupported = errors.New("unixfs: unsupported")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
