package bao

import (
	"errors"
	"strconv"
)

var (
	// ErrHashMismatch: a parent node or a chunk group does not hash to the
	// chaining value its parent (or the root hash) names.
	ErrHashMismatch = errors.New("bao: hash mismatch")
	// ErrTruncated: the encoding ended before the block was complete.
	ErrTruncated = errors.New("bao: truncated encoding")
	// ErrMalformed: a length that cannot be the block's.
	ErrMalformed = errors.New("bao: malformed encoding")
)

// Error locates a failure in a block's encoding. It wraps one of the
// sentinels above or the underlying reader's error.
type Error struct {
	Err error  // ErrHashMismatch, ErrTruncated, ErrMalformed or a read error
	At  string // "parent", "chunk group" or "length prefix"
	Off uint64 // offset in the block of the parent's subtree or the group
}

func (e *Error) Error() string {
	return "bao: " + e.At + " at byte " + strconv.FormatUint(e.Off, 10) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }
