package unixfs

import (
	"errors"

	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	// ErrMalformed reports bytes that are not valid dag-pb or UnixFS.
	ErrMalformed = errors.New("unixfs: malformed")
	// ErrUnsupported reports a valid structure this package does not handle.
	ErrUnsupported = errors.New("unixfs: unsupported")
)

func malformed(format string, args ...any) error {
	return errfmt.Wrapf(ErrMalformed, format, args...)
}
