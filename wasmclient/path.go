package wasmclient

import (
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/verify"
)

// IndexFile is appended to directory paths.
const IndexFile = "index.html"

// SplitPath turns a URL path (percent-encoded, as in URL.pathname) into the
// UnixFS path segments below the site root. An empty path or one ending in
// "/" names the directory's index.html. Empty segments are dropped; ".",
// "..", and segments that decode to contain "/" or NUL are ErrBadPath.
func SplitPath(urlPath string) ([]string, error) {
	var segs []string
	for _, raw := range strings.Split(urlPath, "/") {
		if raw == "" {
			continue
		}
		s, ok := unescape(raw)
		if !ok || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return nil, ErrBadPath
		}
		segs = append(segs, s)
	}
	if urlPath == "" || strings.HasSuffix(urlPath, "/") {
		segs = append(segs, IndexFile)
	}
	return segs, nil
}

// unescape decodes %XX escapes (a '+' stays a '+', as in paths).
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
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
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
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

// ParseRange parses a Range header value of the single form "bytes=a-b",
// "bytes=a-" or "bytes=-n" (the last n bytes: From is -n). Anything else
// (several ranges, garbage) gives nil: the worker then serves the whole
// entity, as HTTP allows.
func ParseRange(h string) *verify.ByteRange {
	h = strings.TrimSpace(h)
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.ContainsAny(spec, ", ") {
		return nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return nil
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return nil
		}
		return &verify.ByteRange{From: -n, To: -1}
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil || from < 0 {
		return nil
	}
	to := int64(-1)
	if b != "" {
		to, err = strconv.ParseInt(b, 10, 64)
		if err != nil || to < from {
			return nil
		}
	}
	return &verify.ByteRange{From: from, To: to}
}
