package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// Range headers the worker does not answer with one range, through the
// worker (docs/protocol.md §6.6): several ranges and malformed ones get the
// whole file with 200 (no multipart/byteranges); ranges past the end and
// bytes=-0 get 416 with "bytes */size". Every answer comes from a node.
func TestWorkerRangeBadInput(t *testing.T) {
	e := newEnv(t, envConfig{})
	f := fileOf(t, e.files, "media/measurements.csv")
	e.controlled()
	ids := e.nodeIDs()
	size := strconv.FormatInt(f.Size, 10)
	for _, tc := range []struct {
		name, rng string
		status    int
	}{
		{"multi-range", "bytes=0-1,5-6", http.StatusOK},
		{"multi-range overlapping", "bytes=0-99,50-149", http.StatusOK},
		{"reversed", "bytes=500-100", http.StatusOK},
		{"negative start", "bytes=-5-10", http.StatusOK},
		{"signed", "bytes=+1-5", http.StatusOK},
		{"no dash", "bytes=100", http.StatusOK},
		{"not a number", "bytes=a-b", http.StatusOK},
		{"other unit", "items=0-5", http.StatusOK},
		{"empty", "bytes=", http.StatusOK},
		{"start at the end", "bytes=" + size + "-", http.StatusRequestedRangeNotSatisfiable},
		{"beyond the end", "bytes=" + size + "0-" + size + "9", http.StatusRequestedRangeNotSatisfiable},
		{"empty suffix", "bytes=-0", http.StatusRequestedRangeNotSatisfiable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+f.Path, &browser.FetchOptions{Cache: "no-store", Headers: map[string]string{"Range": tc.rng}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || res.Error != "" {
				t.Fatalf("Range %q: status %d (body error %q), want %d; headers %v", tc.rng, res.Status, res.Error, tc.status, res.Headers)
			}
			switch tc.status {
			case http.StatusOK:
				if res.Size != f.Size || res.SHA256 != f.SHA256 || res.Headers["content-range"] != "" {
					t.Errorf("Range %q: %d bytes, Content-Range %q; want the whole file (%d bytes) without Content-Range", tc.rng, res.Size, res.Headers["content-range"], f.Size)
				}
			case http.StatusRequestedRangeNotSatisfiable:
				if res.Size != 0 || res.Headers["content-range"] != "bytes */"+size {
					t.Errorf("Range %q: %d bytes, Content-Range %q; want no body and bytes */%s", tc.rng, res.Size, res.Headers["content-range"], size)
				}
			}
			if tr, _ := res.Timing("verity"); tr != "webtransport" {
				t.Errorf("Range %q: Server-Timing %q, want verity=webtransport", tc.rng, res.Headers["server-timing"])
			}
			if n, _ := res.Timing("node"); !ids[n] {
				t.Errorf("Range %q: node %q is not one of %v", tc.rng, n, ids)
			}
		})
	}
}
