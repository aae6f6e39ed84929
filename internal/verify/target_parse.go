//go:build !wasm

package verify

import (
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/webfile"
)

// ParseTarget parses a request target, the inverse of Target, by the one
// rule every Verity server applies to a target it is asked for
// (docs/protocol.md §2; the gateway's CAR fallback is this with its prefix
// for /ipfs):
//
//	/ipfs/<root>[/<path>]?format=car&dag-scope=entity[&entity-bytes=<from>:<to>]
//
// where
//
//   - <root> is a CID;
//   - <path> follows webfile.SplitPath, the rule of site paths: segments
//     percent-escaped, none empty, "." or "..", or holding "/" or NUL once
//     unescaped; a trailing "/" is ignored; at most MaxPathSegments;
//   - format=car and dag-scope=entity are required; entity-bytes is
//     optional: from:to, to inclusive or "*", either negative to count
//     from the end, from > to (both of one sign) refused, as boxo does;
//   - car-version=1, car-order=dfs (or unk) and car-dups=y describe the
//     response every target gets, and are accepted;
//   - any other parameter or value, a parameter given twice, or a
//     malformed query is refused: a request is answered as asked or not
//     at all.
//
// Every error matches ErrBadRequest.
//
// Not in wasm builds: the worker only writes targets, and net/url would add
// 25 KB to its gzipped wasm.
func ParseTarget(target string) (Request, error) {
	p, rawQuery, _ := strings.Cut(target, "?")
	rest, ok := strings.CutPrefix(p, "/ipfs/")
	if !ok {
		return Request{}, wrapf(ErrBadRequest, "target does not start with /ipfs/")
	}
	rawRoot, rawPath, _ := strings.Cut(rest, "/")
	root, err := cid.Parse(rawRoot)
	if err != nil {
		return Request{}, wrapf(ErrBadRequest, "root %q: %v", rawRoot, err)
	}
	req := Request{Root: root}
	if rawPath != "" {
		segs, _, err := webfile.SplitPath("/" + rawPath)
		if err != nil {
			return Request{}, wrapf(ErrBadRequest, "path %q: empty, dot or bad escape in a segment", rawPath)
		}
		if len(segs) > MaxPathSegments {
			return Request{}, wrapf(ErrBadRequest, "path of %d segments", len(segs))
		}
		req.Path = segs
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Request{}, wrapf(ErrBadRequest, "query: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		if len(vs) > 1 {
			return Request{}, wrapf(ErrBadRequest, "query parameter %q given %d times", k, len(vs))
		}
		v, ok := vs[0], true
		switch k {
		case "format":
			ok = v == "car"
		case "dag-scope":
			ok = v == "entity"
		case "car-version":
			ok = v == "1"
		case "car-order":
			ok = v == "dfs" || v == "unk"
		case "car-dups":
			ok = v == "y"
		case "entity-bytes":
			if req.Range, err = parseRange(v); err != nil {
				return Request{}, err
			}
		default:
			return Request{}, wrapf(ErrBadRequest, "unsupported query parameter %q", k)
		}
		if !ok {
			return Request{}, wrapf(ErrBadRequest, "unsupported %s=%q", k, v)
		}
	}
	if !q.Has("format") || !q.Has("dag-scope") {
		return Request{}, wrapf(ErrBadRequest, "format=car and dag-scope=entity are required")
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
		if to == math.MaxInt64 {
			// Past any end: "*". As a number it overflows a node's
			// 1+to-from, which would fail the request and blame the
			// node for a client's range.
			to = -1
		}
	}
	rg := &ByteRange{From: from, To: to}
	if err := rg.validate(); err != nil {
		return nil, err
	}
	return rg, nil
}
