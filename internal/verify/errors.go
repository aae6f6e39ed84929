package verify

import (
	"errors"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	// ErrHashMismatch: a block's bytes do not hash to its CID (*BlockError).
	ErrHashMismatch = errors.New("verify: hash mismatch")
	// ErrUnexpectedBlock: a block is not the one the traversal expects next,
	// or arrives after the traversal completed (*BlockError).
	ErrUnexpectedBlock = errors.New("verify: unexpected block")
	// ErrTruncated: the stream ended (or failed) before the traversal completed.
	ErrTruncated = errors.New("verify: truncated stream")
	// ErrNotFound: verified blocks prove the path does not exist.
	ErrNotFound = errors.New("verify: not found")
	// ErrMalformed: the stream or a verified block is not well-formed.
	ErrMalformed = errors.New("verify: malformed")
	// ErrUnsupported: valid content this verifier does not handle.
	ErrUnsupported = errors.New("verify: unsupported")
	// ErrTooLarge: a block or header exceeds the configured limits.
	ErrTooLarge = errors.New("verify: too large")
	// ErrBadRequest: the request (target, path or range) is invalid.
	ErrBadRequest = errors.New("verify: bad request")
)

// BlockError is an error about one block.
type BlockError struct {
	CID    cid.CID // the block the traversal expected
	Got    cid.CID // for ErrUnexpectedBlock: the block that arrived, if any
	Err    error   // one of the Err* sentinels
	Detail string
}

func (e *BlockError) Error() string {
	s := errfmt.Sprintf("%v: block %s", e.Err, e.CID)
	if e.Got.Defined() {
		s += errfmt.Sprintf(", got %s", e.Got)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *BlockError) Unwrap() error { return e.Err }

func wrapf(sentinel error, format string, args ...any) error {
	return errfmt.Wrapf(sentinel, format, args...)
}
