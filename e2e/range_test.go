package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// A range request from the page is answered by the worker with 206 and
// exactly the range's bytes, fetched from a node as entity-bytes: the nodes
// send fewer bytes than the whole file and the gateway sends none. The same
// rules as the gateway's: suffix ranges, 416 with "bytes */size", If-Range
// by strong ETag only.
func TestWorkerRange(t *testing.T) {
	e := newEnv(t, envConfig{})
	const rel = "media/measurements.csv"
	data, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	const from, to = 300000, 700000
	if size <= to {
		t.Fatalf("%s has %d bytes; the test needs more than %d", rel, size, to)
	}
	e.controlled()
	ids := e.nodeIDs()
	nodesBefore := sumNodes(e.nodeMetrics(), "verity_node_bytes_sent_total", nil)
	gwBefore := bytesServed(e.gatewayMetrics(), "asset")

	fetch := func(hdr map[string]string) browser.FetchResult {
		t.Helper()
		res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+rel, &browser.FetchOptions{Cache: "no-store", Headers: hdr})
		if err != nil {
			t.Fatalf("fetch /%s %v: %v", rel, hdr, err)
		}
		if res.Error != "" {
			t.Fatalf("fetch /%s %v: body error %q", rel, hdr, res.Error)
		}
		return res
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }

	res := fetch(map[string]string{"Range": "bytes=" + itoa(from) + "-" + itoa(to)})
	h := res.Headers
	if res.Status != http.StatusPartialContent || res.Size != to-from+1 || res.SHA256 != sum(data[from:to+1]) {
		t.Fatalf("range: status %d, %d bytes, headers %v", res.Status, res.Size, h)
	}
	if h["content-range"] != "bytes "+itoa(from)+"-"+itoa(to)+"/"+itoa(size) || h["content-length"] != itoa(to-from+1) ||
		h["accept-ranges"] != "bytes" || h["etag"] == "" || h["content-type"] != "text/csv; charset=utf-8" {
		t.Fatalf("range headers %v", h)
	}
	if tr, _ := res.Timing("verity"); tr != "webtransport" {
		t.Errorf("range served over %q, want webtransport (Server-Timing %q)", tr, h["server-timing"])
	}
	if n, _ := res.Timing("node"); !ids[n] {
		t.Errorf("range served by %q, not one of the nodes %v", n, ids)
	}
	sent := sumNodes(e.nodeMetrics(), "verity_node_bytes_sent_total", nil) - nodesBefore
	t.Logf("nodes sent %.0f bytes for a %d-byte range of a %d-byte file", sent, to-from+1, size)
	if sent <= 0 || sent >= float64(size) {
		t.Errorf("nodes sent %.0f bytes for a %d-byte range of a %d-byte file; want fewer than the file", sent, to-from+1, size)
	}
	if got := bytesServed(e.gatewayMetrics(), "asset") - gwBefore; got != 0 {
		t.Errorf("the gateway served %.0f asset bytes; the worker should have used a node", got)
	}
	etag := h["etag"]

	res = fetch(map[string]string{"Range": "bytes=-100"})
	if res.Status != http.StatusPartialContent || res.SHA256 != sum(data[size-100:]) ||
		res.Headers["content-range"] != "bytes "+itoa(size-100)+"-"+itoa(size-1)+"/"+itoa(size) {
		t.Errorf("suffix: status %d, %d bytes, headers %v", res.Status, res.Size, res.Headers)
	}
	res = fetch(map[string]string{"Range": "bytes=" + itoa(size) + "-"})
	if res.Status != http.StatusRequestedRangeNotSatisfiable || res.Headers["content-range"] != "bytes */"+itoa(size) {
		t.Errorf("unsatisfiable: status %d, headers %v", res.Status, res.Headers)
	}
	res = fetch(map[string]string{"Range": "bytes=0-9", "If-Range": etag})
	if res.Status != http.StatusPartialContent || res.SHA256 != sum(data[:10]) {
		t.Errorf("If-Range match: status %d, %d bytes", res.Status, res.Size)
	}
	res = fetch(map[string]string{"Range": "bytes=0-9", "If-Range": `"bafkreiother"`})
	if res.Status != http.StatusOK || res.SHA256 != sum(data) {
		t.Errorf("If-Range mismatch: status %d, %d bytes; want 200 and the whole file", res.Status, res.Size)
	}
}
