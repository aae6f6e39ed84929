package carcheck

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched by every *Error: the CAR is not acceptable.
var ErrInvalid = errors.New("invalid CAR")

// Error codes: stable strings clients may branch on.
const (
	CodeMalformed    = "malformed"       // not a well-formed CARv1 / dag-pb block
	CodeRoots        = "roots"           // the header does not name exactly one root
	CodeHashMismatch = "hash_mismatch"   // a block's bytes do not hash to its CID
	CodeUnsupported  = "unsupported"     // a codec or hash function not accepted
	CodeMissingBlock = "missing_block"   // a linked block is not in the CAR
	CodeExtraBlock   = "extra_block"     // a block not reachable from the root
	CodeDuplicate    = "duplicate_block" // a block that appears more than once
	CodeBadRoot      = "bad_root"        // the root is not a UnixFS directory or file
	CodeTooLarge     = "too_large"       // a block or the whole CAR over its limit
)

// Error says why a CAR was refused, and names the block when one is at fault.
type Error struct {
	Code   string // one of the Code* constants
	CID    string // the offending block's CID, when there is one
	Detail string // human-readable
}

func (e *Error) Error() string {
	if e.CID != "" {
		return fmt.Sprintf("invalid CAR: %s: %s (block %s)", e.Code, e.Detail, e.CID)
	}
	return fmt.Sprintf("invalid CAR: %s: %s", e.Code, e.Detail)
}

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func fail(code, c, format string, args ...any) error {
	return &Error{Code: code, CID: c, Detail: fmt.Sprintf(format, args...)}
}
