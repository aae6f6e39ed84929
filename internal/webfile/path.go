package webfile

import "strings"

// IndexFile is the file that names a directory path ("/" or "/docs/").
const IndexFile = "index.html"

// SplitPath turns a percent-encoded URL path (URL.EscapedPath, or
// URL.pathname in a browser) into the unescaped UnixFS segments below the
// site root. dir reports a path naming a directory: the empty path, "/", or
// one ending in "/"; callers append IndexFile. The rule, the same for the
// gateway and the worker:
//
//   - one leading and one trailing "/" are dropped; every other "/"
//     separates two non-empty segments: an empty segment ("/a//b") is
//     ErrBadPath, not skipped, so one file has one URL;
//   - each segment is percent-decoded (%XX, either case; '+' stays '+'); a
//     malformed escape is ErrBadPath;
//   - a decoded segment that is "." or "..", or contains "/" or NUL, is
//     ErrBadPath: a URL never walks out of, or across, a directory level by
//     escapes.
func SplitPath(urlPath string) (segs []string, dir bool, err error) {
	p := strings.TrimPrefix(urlPath, "/")
	if p == "" {
		return nil, true, nil
	}
	dir = strings.HasSuffix(p, "/")
	p = strings.TrimSuffix(p, "/")
	segs = strings.Split(p, "/")
	for i, raw := range segs {
		s, ok := unescape(raw)
		if !ok || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return nil, false, ErrBadPath
		}
		segs[i] = s
	}
	return segs, dir, nil
}

// unescape decodes %XX escapes; false on a malformed one.
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
