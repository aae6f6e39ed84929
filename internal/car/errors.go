package car

import (
	"errors"

	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	// ErrMalformed reports bytes that are not a valid CARv1 stream.
	ErrMalformed = errors.New("car: malformed")
	// ErrTruncated reports a stream that ended inside the header or a section.
	ErrTruncated = errors.New("car: truncated")
	// ErrTooLarge reports a header or section longer than the configured limit.
	ErrTooLarge = errors.New("car: too large")
	// ErrVersion reports a header whose version is not 1.
	ErrVersion = errors.New("car: unsupported version")
)

func malformed(format string, args ...any) error {
	return errfmt.Wrapf(ErrMalformed, format, args...)
}
