package bao

import "errors"

var (
	// ErrHashMismatch: a parent node or a chunk group does not hash to the
	// chaining value its parent (or the root hash) names.
	ErrHashMismatch = errors.New("bao: hash mismatch")
	// ErrTruncated: the encoding ended before the block was complete.
	ErrTruncated = errors.New("bao: truncated encoding")
	// ErrMalformed: a length that cannot be the block's.
	ErrMalformed = errors.New("bao: malformed encoding")
)
