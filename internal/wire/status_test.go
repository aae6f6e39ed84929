//go:build !js

package wire

import (
	"net/http"
	"strconv"
	"testing"
)

// statusTextWant is net/http's reason phrase, but RFC 9110's for 416
// (net/http keeps RFC 7233's "Requested Range Not Satisfiable").
func statusTextWant(code int) string {
	if code == http.StatusRequestedRangeNotSatisfiable {
		return "Range Not Satisfiable"
	}
	return http.StatusText(code)
}

// StatusText is net/http's for every status it names, and names every
// status a node sends (§3, §5) or the worker answers with (§7.6).
func TestStatusTextMatchesNetHTTP(t *testing.T) {
	for code := 100; code < 1000; code++ {
		got := StatusText(code)
		if got == "Status "+strconv.Itoa(code) {
			continue
		}
		if want := statusTextWant(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
	for _, code := range []int{200, 206, 301, 304, 400, 402, 403, 404, 405, 406, 410, 412, 416, 429, 500, 501, 502, 503, 504} {
		if got, want := StatusText(code), statusTextWant(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}
