package unixfs

import (
	"errors"
	"io"
	"math"
)

// The protobuf wire format, as google.golang.org/protobuf/encoding/protowire
// reads and writes it (the subset dag-pb and UnixFS need, same results and
// errors; a test compares them). protowire links the protobuf runtime's
// error and random-seed packages: 9 KB of the worker's gzipped wasm.

type (
	fieldNumber int32
	wireType    int8
)

const (
	varintType     wireType = 0
	fixed64Type    wireType = 1
	bytesType      wireType = 2
	startGroupType wireType = 3
	endGroupType   wireType = 4
	fixed32Type    wireType = 5

	maxGroupDepth = 10000
)

// Error codes: negative lengths, as protowire's.
const (
	_ = -iota
	errCodeTruncated
	errCodeFieldNumber
	errCodeOverflow
	errCodeReserved
	errCodeEndGroup
	errCodeRecursionDepth
)

var (
	errFieldNumber = errors.New("proto: invalid field number")
	errOverflow    = errors.New("proto: variable length integer overflow")
	errReserved    = errors.New("proto: cannot parse reserved wire type")
	errEndGroup    = errors.New("proto: mismatching end group marker")
	errParse       = errors.New("proto: parse error")
)

// parseError turns a negative length into its error (nil for n >= 0). It
// is only called on errors, from a score of places, and is not inlined
// into them (that cost the worker's wasm about 2 KB gzipped).
//
//go:noinline
func parseError(n int) error {
	switch {
	case n >= 0:
		return nil
	case n == errCodeTruncated:
		return io.ErrUnexpectedEOF
	case n == errCodeFieldNumber:
		return errFieldNumber
	case n == errCodeOverflow:
		return errOverflow
	case n == errCodeReserved:
		return errReserved
	case n == errCodeEndGroup:
		return errEndGroup
	}
	return errParse
}

// consumeVarint decodes a varint of at most 10 bytes (not necessarily
// minimal) and returns it and its length, or a negative error code. It is
// not inlined: decoding a node calls it from a dozen places, and inlined
// into each it cost the worker's wasm about 2 KB gzipped, for dag-pb
// nodes that are a few per file.
//
//go:noinline
func consumeVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, errCodeTruncated
		}
		y := uint64(b[i])
		if i == 9 {
			if y >= 2 {
				return 0, errCodeOverflow
			}
			return v | y<<63, 10
		}
		v |= (y & 0x7f) << (7 * i)
		if y < 0x80 {
			return v, i + 1
		}
	}
	return 0, errCodeOverflow // not reached
}

func consumeTag(b []byte) (fieldNumber, wireType, int) {
	v, n := consumeVarint(b)
	if n < 0 {
		return 0, 0, n
	}
	if v>>3 > math.MaxInt32 {
		return 0, 0, errCodeFieldNumber
	}
	num, typ := fieldNumber(v>>3), wireType(v&7)
	if num < 1 {
		return 0, 0, errCodeFieldNumber
	}
	return num, typ, n
}

func consumeBytes(b []byte) ([]byte, int) {
	m, n := consumeVarint(b)
	if n < 0 {
		return nil, n
	}
	if m > uint64(len(b[n:])) {
		return nil, errCodeTruncated
	}
	return b[n:][:m], n + int(m)
}

// consumeFieldValue returns the length of a value of type typ (a group's
// includes its end marker), or a negative error code.
func consumeFieldValue(num fieldNumber, typ wireType, b []byte) int {
	return consumeFieldValueD(num, typ, b, maxGroupDepth)
}

func consumeFieldValueD(num fieldNumber, typ wireType, b []byte, depth int) int {
	switch typ {
	case varintType:
		_, n := consumeVarint(b)
		return n
	case fixed32Type:
		if len(b) < 4 {
			return errCodeTruncated
		}
		return 4
	case fixed64Type:
		if len(b) < 8 {
			return errCodeTruncated
		}
		return 8
	case bytesType:
		_, n := consumeBytes(b)
		return n
	case startGroupType:
		if depth < 0 {
			return errCodeRecursionDepth
		}
		n0 := len(b)
		for {
			num2, typ2, n := consumeTag(b)
			if n < 0 {
				return n
			}
			b = b[n:]
			if typ2 == endGroupType {
				if num != num2 {
					return errCodeEndGroup
				}
				return n0 - len(b)
			}
			n = consumeFieldValueD(num2, typ2, b, depth-1)
			if n < 0 {
				return n
			}
			b = b[n:]
		}
	case endGroupType:
		return errCodeEndGroup
	}
	return errCodeReserved
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, num fieldNumber, typ wireType) []byte {
	return appendVarint(b, uint64(num)<<3|uint64(typ&7))
}

func appendBytes(b, v []byte) []byte { return append(appendVarint(b, uint64(len(v))), v...) }

func appendString(b []byte, v string) []byte {
	return append(appendVarint(b, uint64(len(v))), v...)
}
