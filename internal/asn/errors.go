package asn

import (
	"errors"
	"strconv"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrSyntax: a line is in neither accepted format, or a field is malformed.
	ErrSyntax = errors.New("asn: syntax error")
	// ErrRange: a range's end is before its start or in another family.
	ErrRange = errors.New("asn: invalid range")
	// ErrTooLong: a line exceeds MaxLineBytes.
	ErrTooLong = errors.New("asn: line too long")
)

// ParseError locates a malformed line.
type ParseError struct {
	Line int    // 1-based
	Msg  string // what is wrong
	Err  error  // ErrSyntax, ErrRange or ErrTooLong
}

func (e *ParseError) Error() string {
	return "asn: line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

func (e *ParseError) Unwrap() error { return e.Err }
