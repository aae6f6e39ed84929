package webfile

import (
	"math"
	"strconv"
	"strings"
)

// Spec is one syntactically valid byte-range-spec (RFC 9110 §14.1.2),
// before the entity's size is known.
type Spec struct {
	// Suffix marks "-N": the last N bytes; N is in First.
	Suffix bool
	// First is first-pos, or the suffix length N.
	First int64
	// Last is last-pos, or -1 when absent ("a-" and suffix ranges).
	Last int64
}

// Range is a resolved, satisfiable range: bytes Start..End inclusive.
type Range struct{ Start, End int64 }

// Length is the number of bytes in r.
func (r Range) Length() int64 { return r.End - r.Start + 1 }

// ContentRange is the Content-Range of a 206 answer: "bytes a-b/size".
func (r Range) ContentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End, 10) + "/" + strconv.FormatInt(size, 10)
}

// ParseSpec parses a Range header value. ok is false when the header must
// be ignored and the full body served: empty, another unit than bytes,
// malformed (including last-pos < first-pos), or several ranges (Verity
// answers multi-range requests with the full body rather than
// multipart/byteranges). The unit is case-insensitive; whitespace around the
// value is allowed, inside it is not. Positions beyond int64 saturate.
func ParseSpec(header string) (s Spec, ok bool) {
	h := strings.TrimSpace(header)
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return Spec{}, false
	}
	spec := h[6:]
	if strings.IndexByte(spec, ',') >= 0 {
		return Spec{}, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return Spec{}, false
	}
	if a == "" {
		n, ok := digits(b)
		if !ok {
			return Spec{}, false
		}
		return Spec{Suffix: true, First: n, Last: -1}, true
	}
	first, ok := digits(a)
	if !ok {
		return Spec{}, false
	}
	if b == "" {
		return Spec{First: first, Last: -1}, true
	}
	last, ok := digits(b)
	if !ok || last < first {
		return Spec{}, false
	}
	return Spec{First: first, Last: last}, true
}

// digits parses a non-empty run of ASCII digits, saturating at MaxInt64.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// Resolve applies s to an entity of size bytes. Last is clamped to size-1;
// a suffix longer than the entity selects all of it. A first-pos at or past
// the end, a suffix of 0, or an empty entity give *UnsatisfiableError.
func (s Spec) Resolve(size int64) (Range, error) {
	if size <= 0 {
		return Range{}, &UnsatisfiableError{Size: max(size, 0)}
	}
	if s.Suffix {
		if s.First <= 0 {
			return Range{}, &UnsatisfiableError{Size: size}
		}
		return Range{Start: max(size-s.First, 0), End: size - 1}, nil
	}
	if s.First >= size {
		return Range{}, &UnsatisfiableError{Size: size}
	}
	end := size - 1
	if s.Last >= 0 && s.Last < end {
		end = s.Last
	}
	return Range{Start: s.First, End: end}, nil
}

// EntityBytes is the trustless-gateway entity-bytes range (from, to; to -1
// for "*") to request before the size is known: it covers exactly the
// bytes s will select. A range that can never be satisfied (a suffix of 0)
// asks for bytes past any end, so only the blocks down to the entity's root
// are sent; the size they give is what the 416 answer needs.
func (s Spec) EntityBytes() (from, to int64) {
	switch {
	case s.Suffix && s.First <= 0:
		return math.MaxInt64, -1
	case s.Suffix:
		return -s.First, -1
	case s.Last == math.MaxInt64:
		// A last-pos past any end, saturated when parsed: to the end. As
		// a number it would overflow where the range is served
		// (1+to-from, in the verifier and in the node's gateway code).
		return s.First, -1
	}
	return s.First, s.Last
}

// ParseRange parses a Range header against an entity of size bytes: nil and
// no error means serve the full body (no range, or one to ignore);
// *UnsatisfiableError means answer 416.
func ParseRange(header string, size int64) (*Range, error) {
	s, ok := ParseSpec(header)
	if !ok {
		return nil, nil
	}
	r, err := s.Resolve(size)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// IfRange reports whether a range request may be honoured given its
// If-Range header and the entity's ETag: yes when the header is absent, or
// is exactly etag and etag is strong (RFC 9110 §13.1.5 requires a strong
// comparison). A weak tag, another tag, or an HTTP-date (Verity keeps no
// modification dates) means: send the full body.
func IfRange(ifRange, etag string) bool {
	v := strings.TrimSpace(ifRange)
	if v == "" {
		return true
	}
	return len(etag) >= 2 && etag[0] == '"' && v == etag
}
