package webfile

import (
	"errors"
	"strconv"
)

var (
	// ErrBadPath: the URL path cannot name UnixFS content. Answer 400.
	ErrBadPath = errors.New("webfile: bad path")
	// ErrUnsatisfiable: the range selects no byte of the entity. Answer 416
	// with the Content-Range of the *UnsatisfiableError.
	ErrUnsatisfiable = errors.New("webfile: range not satisfiable")
)

// UnsatisfiableError is the error of a range that selects no byte of an
// entity of Size bytes. It matches ErrUnsatisfiable.
type UnsatisfiableError struct{ Size int64 }

func (e *UnsatisfiableError) Error() string {
	return "webfile: range not satisfiable for " + strconv.FormatInt(e.Size, 10) + " bytes"
}

// Is reports whether target is ErrUnsatisfiable.
func (e *UnsatisfiableError) Is(target error) bool { return target == ErrUnsatisfiable }

// ContentRange is the Content-Range of the 416 answer: "bytes */size".
func (e *UnsatisfiableError) ContentRange() string {
	return "bytes */" + strconv.FormatInt(e.Size, 10)
}
