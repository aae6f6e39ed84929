package wasmclient

import "strings"

// splitHref returns the path and the query (without '?') of href, an
// absolute http(s) URL as the browser serializes a Request's url (its
// path already percent-encoded, no fragment), so the worker need not build
// a URL object per request. ok is false for any other shape; the caller
// then asks the URL parser.
func splitHref(href string) (path, query string, ok bool) {
	rest, found := strings.CutPrefix(href, "https://")
	if !found {
		if rest, found = strings.CutPrefix(href, "http://"); !found {
			return "", "", false
		}
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 || strings.ContainsAny(rest[:i], "?#\\@") || strings.IndexByte(rest, '#') >= 0 {
		return "", "", false
	}
	path, query, _ = strings.Cut(rest[i:], "?")
	return path, query, true
}
