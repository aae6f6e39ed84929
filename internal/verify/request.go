package verify

import (
	"math"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/cid"
)

// MaxPathSegments bounds the path of a request.
const MaxPathSegments = 256

// ByteRange is an entity-bytes range. From may be negative (counted from the
// end, as in boxo). To is inclusive; -1 means to the end, and other negative
// values count from the end too. A To of math.MaxInt64 is past any end and
// means the same as -1 (it is written and parsed as "*").
type ByteRange struct{ From, To int64 }

// Request names what a CAR response must contain.
type Request struct {
	Root  cid.CID
	Path  []string   // unescaped segments below Root
	Range *ByteRange // nil: the whole entity
}

// Target returns the request target for req:
// "/ipfs/<root>/<escaped path>?format=car&dag-scope=entity[&entity-bytes=a:b]".
// A To of -1 (or math.MaxInt64) is written as "*".
func (req Request) Target() string {
	var b strings.Builder
	b.WriteString("/ipfs/")
	b.WriteString(req.Root.String())
	for _, s := range req.Path {
		b.WriteByte('/')
		b.WriteString(pathEscape(s))
	}
	b.WriteString("?format=car&dag-scope=entity")
	if req.Range != nil {
		b.WriteString("&entity-bytes=")
		b.WriteString(strconv.FormatInt(req.Range.From, 10))
		b.WriteByte(':')
		if req.Range.To == -1 || req.Range.To == math.MaxInt64 {
			b.WriteByte('*')
		} else {
			b.WriteString(strconv.FormatInt(req.Range.To, 10))
		}
	}
	return b.String()
}

// pathEscape escapes s for one path segment exactly as url.PathEscape does
// (tests check it): this package avoids net/url in the worker's wasm.
func pathEscape(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if segmentByteNeedsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if segmentByteNeedsEscape(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// segmentByteNeedsEscape: everything but unreserved characters and the
// sub-delimiters and ':' / '@' RFC 3986 allows in a path segment.
func segmentByteNeedsEscape(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return false
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ':', '=', '@':
		return false
	}
	return true
}

// validate applies the checks boxo applies before serving.
func (r ByteRange) validate() error {
	if r.From >= 0 && r.To >= 0 && r.From > r.To {
		return wrapf(ErrBadRequest, "entity-bytes from %d after to %d", r.From, r.To)
	}
	if r.From < 0 && r.To < 0 && r.From > r.To && r.To != -1 {
		return wrapf(ErrBadRequest, "entity-bytes from %d after to %d", r.From, r.To)
	}
	return nil
}

// resolve turns the range into [start, end) over an entity of size bytes,
// as boxo's walkGatewaySimpleSelector does. ok is false when boxo would fail
// the request (fewer than zero bytes to read).
func (r *ByteRange) resolve(size uint64) (start, end uint64, ok bool) {
	sz := int64(size)
	if r == nil {
		return 0, size, true
	}
	from := r.From
	if from < 0 {
		from = max(sz+from, 0)
	}
	var stop int64 // exclusive
	if r.To == -1 {
		stop = sz
	} else {
		to := r.To
		if to < 0 {
			to = sz + to
		}
		if to < from-1 { // 1+to-from < 0, without its overflow
			return 0, 0, false
		}
		stop = sz
		if to < sz {
			stop = to + 1
		}
	}
	stop = min(stop, sz)
	if from >= stop {
		return min(uint64(from), size), min(uint64(from), size), true
	}
	return uint64(from), uint64(stop), true
}
