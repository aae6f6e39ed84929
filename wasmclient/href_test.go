package wasmclient

import "testing"

func TestSplitHref(t *testing.T) {
	for _, tc := range []struct {
		href, path, query string
		ok                bool
	}{
		{"https://example.com/", "/", "", true},
		{"http://127.0.0.1:8080/a/b.css?v=1&x", "/a/b.css", "v=1&x", true},
		{"https://example.com/%E2%9C%93/x%20y", "/%E2%9C%93/x%20y", "", true},
		{"https://example.com/a?b?c", "/a", "b?c", true},
		{"https://example.com/a?", "/a", "", true},
		// Not what a Request's url looks like: left to the URL parser.
		{"https://example.com", "", "", false},
		{"https://example.com?x=1", "", "", false},
		{"https://user@example.com/a", "", "", false},
		{"https://example.com/a#frag", "", "", false},
		{"ftp://example.com/a", "", "", false},
		{"/a/b", "", "", false},
		{"", "", "", false},
	} {
		path, query, ok := splitHref(tc.href)
		if path != tc.path || query != tc.query || ok != tc.ok {
			t.Errorf("splitHref(%q) = %q, %q, %v; want %q, %q, %v", tc.href, path, query, ok, tc.path, tc.query, tc.ok)
		}
	}
}
