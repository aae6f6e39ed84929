package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// TestFirstVisitRanges: the gateway answers ranges by the same rules as the
// worker (internal/webfile): suffix ranges, clamping, 416 with "bytes */size",
// the full body for multi-range and malformed headers, If-Range by strong
// ETag only.
func TestFirstVisitRanges(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 1, files)
	url := nw.SiteURL("demo") + "media/big.bin"
	big := files["media/big.bin"]
	size := int64(len(big))
	n := strconv.FormatInt
	resp, _ := nw.get(t, url, "Range", "bytes=0-0")
	etag := resp.Header.Get("ETag")
	for _, tc := range []struct {
		name, rng, ifRange string
		status             int
		from, to           int64
	}{
		{"middle", "bytes=300000-600000", "", 206, 300000, 600000},
		{"suffix", "bytes=-1000", "", 206, size - 1000, size - 1},
		{"open-ended", "bytes=" + n(size-10, 10) + "-", "", 206, size - 10, size - 1},
		{"last byte", "bytes=" + n(size-1, 10) + "-" + n(size-1, 10), "", 206, size - 1, size - 1},
		{"clamped", "bytes=5-" + n(size*2, 10), "", 206, 5, size - 1},
		{"if-range match", "bytes=0-99", etag, 206, 0, 99},
		{"unsatisfiable", "bytes=" + n(size, 10) + "-", "", 416, 0, 0},
		{"suffix zero", "bytes=-0", "", 416, 0, 0},
		{"multi-range", "bytes=0-1,4-5", "", 200, 0, 0},
		{"malformed", "bytes=9-3", "", 200, 0, 0},
		{"if-range mismatch", "bytes=0-99", `"bafkreiother"`, 200, 0, 0},
		{"if-range date", "bytes=0-99", "Sat, 21 Nov 2026 20:00:00 GMT", 200, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{"Range", tc.rng}
			if tc.ifRange != "" {
				hdr = append(hdr, "If-Range", tc.ifRange)
			}
			resp, body := nw.get(t, url, hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d", resp.Status, tc.status)
			}
			switch tc.status {
			case 206:
				want := "bytes " + n(tc.from, 10) + "-" + n(tc.to, 10) + "/" + n(size, 10)
				if !bytes.Equal(body, big[tc.from:tc.to+1]) || resp.Header.Get("Content-Range") != want ||
					resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("ETag") != etag {
					t.Fatalf("%d bytes, headers %v; want %s", len(body), resp.Header, want)
				}
			case 416:
				if resp.Header.Get("Content-Range") != "bytes */"+n(size, 10) {
					t.Fatalf("Content-Range %q", resp.Header.Get("Content-Range"))
				}
			case 200:
				if !bytes.Equal(body, big) || resp.Header.Get("Content-Range") != "" {
					t.Fatalf("%d bytes, Content-Range %q", len(body), resp.Header.Get("Content-Range"))
				}
			}
		})
	}
	t.Run("empty segment", func(t *testing.T) {
		resp, _ := nw.get(t, nw.SiteURL("demo")+"media//big.bin")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %s, want 400", resp.Status)
		}
	})
}

// TestFirstVisitRangeHugeLastPos: a last-pos past any end (saturated at
// 2^63-1 when parsed) selects the bytes to the end: 206 with them, and no
// honest node charged for a client's range.
func TestFirstVisitRangeHugeLastPos(t *testing.T) {
	files := sitetest.Files()
	nw := startNetwork(t, 2, files)
	url := nw.SiteURL("demo") + "media/big.bin"
	big := files["media/big.bin"]
	for _, tc := range []struct {
		rng  string
		from int
	}{
		{"bytes=0-99999999999999999999", 0},
		{"bytes=1-99999999999999999999", 1},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			resp, body := nw.get(t, url, "Range", tc.rng)
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, big[tc.from:]) {
				t.Errorf("status %s, %d bytes; want 206 with %d bytes", resp.Status, len(body), len(big)-tc.from)
			}
			if n := nw.counter(t, "verity_gateway_node_failures_total"); n != 0 {
				t.Errorf("%v node failures charged for a client's range", n)
			}
		})
	}
}
