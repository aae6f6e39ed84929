//go:build !wasm

package verify

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/cid"
)

// ParseTarget parses a request target as produced by Target. It requires
// format=car and dag-scope=entity, accepts entity-bytes, and ignores car-*
// parameters and empty path segments (a trailing slash).
//
// Not in wasm builds: the worker only writes targets, and net/url would add
// 25 KB to its gzipped wasm.
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
