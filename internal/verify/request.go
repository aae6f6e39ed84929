package verify

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/cid"
)

// MaxPathSegments bounds the path of a request.
const MaxPathSegments = 256

// ByteRange is an entity-bytes range. From may be negative (counted from the
// end, as in boxo). To is inclusive; -1 means to the end, and other negative
// values count from the end too.
type ByteRange struct{ From, To int64 }

// Request names what a CAR response must contain.
type Request struct {
	Root  cid.CID
	Path  []string   // unescaped segments below Root
	Range *ByteRange // nil: the whole entity
}

// Target returns the request target for req:
// "/ipfs/<root>/<escaped path>?format=car&dag-scope=entity[&entity-bytes=a:b]".
// A To of -1 is written as "*".
func (req Request) Target() string {
	var b strings.Builder
	b.WriteString("/ipfs/")
	b.WriteString(req.Root.String())
	for _, s := range req.Path {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	b.WriteString("?format=car&dag-scope=entity")
	if req.Range != nil {
		b.WriteString("&entity-bytes=")
		b.WriteString(strconv.FormatInt(req.Range.From, 10))
		b.WriteByte(':')
		if req.Range.To == -1 {
			b.WriteByte('*')
		} else {
			b.WriteString(strconv.FormatInt(req.Range.To, 10))
		}
	}
	return b.String()
}

// ParseTarget parses a request target as produced by Target. It requires
// format=car and dag-scope=entity, accepts entity-bytes, and ignores car-*
// parameters and empty path segments (a trailing slash).
func ParseTarget(target string) (Request, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return Request{}, wrapf(ErrBadRequest, "target: %v", err)
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/ipfs/") {
		return Request{}, wrapf(ErrBadRequest, "target does not start with /ipfs/")
	}
	segs := strings.Split(p[len("/ipfs/"):], "/")
	root, err := cid.Parse(segs[0])
	if err != nil {
		return Request{}, wrapf(ErrBadRequest, "root: %v", err)
	}
	req := Request{Root: root}
	for _, s := range segs[1:] {
		if s == "" {
			continue
		}
		us, err := url.PathUnescape(s)
		if err != nil {
			return Request{}, wrapf(ErrBadRequest, "path segment %q: %v", s, err)
		}
		if us == "." || us == ".." || strings.ContainsRune(us, '/') || us == "" {
			return Request{}, wrapf(ErrBadRequest, "path segment %q", us)
		}
		req.Path = append(req.Path, us)
	}
	if len(req.Path) > MaxPathSegments {
		return Request{}, wrapf(ErrBadRequest, "path of %d segments", len(req.Path))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Request{}, wrapf(ErrBadRequest, "query: %v", err)
	}
	if q.Get("format") != "car" {
		return Request{}, wrapf(ErrBadRequest, "format must be car")
	}
	if q.Get("dag-scope") != "entity" {
		return Request{}, wrapf(ErrBadRequest, "dag-scope must be entity")
	}
	if q.Has("entity-bytes") {
		rg, err := parseRange(q.Get("entity-bytes"))
		if err != nil {
			return Request{}, err
		}
		req.Range = rg
	}
	return req, nil
}

func parseRange(s string) (*ByteRange, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return nil, wrapf(ErrBadRequest, "entity-bytes %q", s)
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return nil, wrapf(ErrBadRequest, "entity-bytes from %q", a)
	}
	to := int64(-1)
	if b != "*" {
		to, err = strconv.ParseInt(b, 10, 64)
		if err != nil {
			return nil, wrapf(ErrBadRequest, "entity-bytes to %q", b)
		}
	}
	rg := &ByteRange{From: from, To: to}
	if err := rg.validate(); err != nil {
		return nil, err
	}
	return rg, nil
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
		if 1+to-from < 0 {
			return 0, 0, false
		}
		stop = to + 1
	}
	stop = min(stop, sz)
	if from >= stop {
		return min(uint64(from), size), min(uint64(from), size), true
	}
	return uint64(from), uint64(stop), true
}
