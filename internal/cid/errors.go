package cid

import (
	"errors"

	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	// ErrInvalid reports malformed CID text or bytes.
	ErrInvalid = errors.New("cid: invalid")
	// ErrUnsupported reports a well-formed CID this package cannot handle
	// (another multibase, a CID version above 1).
	ErrUnsupported = errors.New("cid: unsupported")
	// ErrHashMismatch reports data whose digest differs from the CID's.
	ErrHashMismatch = errors.New("cid: hash mismatch")
	// ErrUnknownHash is matched by *UnknownHashError.
	ErrUnknownHash = errors.New("cid: unknown multihash")
)

// UnknownHashError is returned by Verify for a multihash function it does
// not implement.
type UnknownHashError struct {
	Code uint64
}

func (e *UnknownHashError) Error() string {
	return errfmt.Sprintf("cid: unknown multihash function 0x%x", e.Code)
}

// Is makes errors.Is(err, ErrUnknownHash) true.
func (e *UnknownHashError) Is(target error) bool { return target == ErrUnknownHash }

func invalid(format string, args ...any) error {
	return errfmt.Wrapf(ErrInvalid, format, args...)
}
