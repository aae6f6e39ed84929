package e2e

import (
	"fmt"
	"hash/adler32"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/web"
)

// The parallel fetch's test file: big enough that the window is a small
// part of it, small enough to import and stream in a few seconds.
const (
	parallelFile = "large/stream-256m.bin"
	parallelSize = 256 << 20
	// maxWorkerWasm bounds the worker's wasm memory after streaming the
	// file: the read-ahead window (12 MiB by default) and the Go runtime,
	// far below the file's size.
	maxWorkerWasm = 128 << 20
)

// deterministicFile writes size pseudo-random bytes (fixed seed) to path
// and returns their Adler-32.
func deterministicFile(t *testing.T, path string, size int) uint32 {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{'p', 'a', 'r'}))
	data := make([]byte, size)
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return adler32.Checksum(data)
}

// A large file fetched through the worker comes from both nodes at once
// (both nodes' byte counters grow by a good share of it), arrives whole and
// identical, and the worker's memory stays bounded by its read-ahead
// window rather than growing with the file.
func TestWorkerParallelLargeFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, web.Demo); err != nil {
		t.Fatal(err)
	}
	want := deterministicFile(t, filepath.Join(dir, filepath.FromSlash(parallelFile)), parallelSize)
	start := time.Now()
	e := newEnv(t, envConfig{demoDir: dir, readyTimeout: 2 * time.Minute})
	e.controlled()
	t.Logf("devnet with the %d MiB file up in %v", parallelSize>>20, time.Since(start).Round(time.Millisecond))
	before := e.nodeMetrics()

	res, err := e.b.StreamFetch(e.ctx(3*time.Minute), "/"+parallelFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || res.Error != "" || res.Size != parallelSize || res.Adler32 != want {
		t.Fatalf("status %d, error %q, %d bytes, adler32 %08x; want %d bytes, %08x", res.Status, res.Error, res.Size, res.Adler32, parallelSize, want)
	}
	t.Logf("streamed through the worker in %.0f ms", res.Millis)
	after := e.nodeMetrics()
	for id, m := range after {
		sent := m.Sum("verity_node_bytes_sent_total", nil) - before[id].Sum("verity_node_bytes_sent_total", nil)
		t.Logf("node %s sent %.0f bytes", id, sent)
		if sent < parallelSize/5 {
			t.Errorf("node %s sent %.0f bytes of a %d-byte file: not a parallel fetch", id, sent, parallelSize)
		}
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := workerStat(stats, "/"+parallelFile)
	if !ok || rec.Parallel != 2 || rec.Bytes != parallelSize || rec.Error != "" {
		t.Fatalf("worker record %+v", rec)
	}
	t.Logf("worker record %+v", rec)
	sc, err := e.b.WorkerScores(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("worker memory after %d MiB: wasm %d MiB, JS heap %d MiB; scores:\n%s", parallelSize>>20, sc.Memory.WasmBytes>>20, sc.Memory.JSHeapBytes>>20, sc.Scores)
	if heap, err := e.b.WorkerJSHeap(e.ctx(20 * time.Second)); err != nil || heap <= 0 {
		t.Errorf("worker JS heap over CDP: %d, %v", heap, err)
	} else {
		t.Logf("worker JS heap in use: %d KiB", heap>>10)
	}
	if sc.Memory.WasmBytes <= 0 || sc.Memory.WasmBytes > maxWorkerWasm {
		t.Fatalf("worker wasm memory %d bytes after streaming %d bytes; want at most %d", sc.Memory.WasmBytes, parallelSize, maxWorkerWasm)
	}

	// The scores survive a worker restart (Cache Storage): the worker
	// saves them after a request, at most every 10 s, in the background.
	// Requests go on until the saved document (read from the page, which
	// shares the origin's Cache Storage) holds the large fetch's samples;
	// then the restarted worker must know them.
	samples := func(doc string) map[string]int64 {
		out := map[string]int64{}
		for _, ln := range strings.Split(doc, "\n")[1:] {
			if f := strings.Fields(ln); len(f) == 6 {
				n, _ := strconv.ParseInt(f[4], 10, 64)
				out[f[0]] = n
			}
		}
		return out
	}
	had := samples(sc.Scores)
	if len(had) != 2 {
		t.Fatalf("the worker scores %d nodes after the large fetch, want 2:\n%s", len(had), sc.Scores)
	}
	holds := func(doc string) error {
		got := samples(doc)
		for id, n := range had {
			if n < 10 || got[id] < n-1 {
				return fmt.Errorf("node %s: %d samples, want at least %d (and 10); document:\n%s", id, got[id], n-1, doc)
			}
		}
		return nil
	}
	testutil.EventuallyErr(t, 30*time.Second, "the worker to save the large fetch's scores", func() error {
		if _, err := e.b.Fetch(e.ctx(30*time.Second), "/style.css", &browser.FetchOptions{Cache: "no-store"}); err != nil {
			return err
		}
		doc, err := browser.Eval[string](e.ctx(10*time.Second), e.b, savedScoresJS)
		if err != nil {
			return err
		}
		return holds(doc)
	})
	if err := e.b.StopAllWorkers(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 15*time.Second, "the restarted worker to load the saved scores", func() error {
		sc2, err := e.b.WorkerScores(e.ctx(20 * time.Second))
		if err != nil {
			return err
		}
		return holds(sc2.Scores)
	})
}

// savedScoresJS reads the scores document the worker saved in Cache
// Storage (wasmclient.CacheScoreStore's defaults), "" when there is none.
const savedScoresJS = `caches.open('verity-scores-v1')
	.then((c) => c.match('/.verity/scores'))
	.then((r) => (r ? r.text() : ''))`

// One node, capped by --max-egress like the bench's parallel section
// (8 MiB/s), serves a file larger than a voucher's per-node cap (16 MiB by
// default) to the worker over WebTransport: the whole file, byte-equal,
// from the node on one transport with no failover and no report, twice in
// a row (a node the worker had reported would be dropped for the second
// fetch). When the cap is spent mid-stream the worker loads a new voucher
// and asks the node again for the rest.
func TestWorkerCappedNodeServesLargeFile(t *testing.T) {
	const (
		name   = "large/capped-24m.bin"
		size   = 24 << 20
		egress = 8 << 20
	)
	dir := t.TempDir()
	if err := os.CopyFS(dir, web.Demo); err != nil {
		t.Fatal(err)
	}
	want := deterministicFile(t, filepath.Join(dir, filepath.FromSlash(name)), size)
	e := newEnv(t, envConfig{demoDir: dir, nodes: 1, nodeMaxEgress: egress, readyTimeout: time.Minute})
	e.controlled()
	for i := range 2 {
		res, err := e.b.StreamFetch(e.ctx(2*time.Minute), "/"+name, &browser.FetchOptions{Cache: "no-store"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusOK || res.Error != "" || res.Size != size || res.Adler32 != want {
			t.Fatalf("fetch %d: status %d, error %q, %d bytes, adler32 %08x; want %d bytes, %08x", i, res.Status, res.Error, res.Size, res.Adler32, size, want)
		}
		if tr := serverTiming(res.Headers["server-timing"], "verity"); tr != "webtransport" {
			t.Fatalf("fetch %d: Server-Timing %q, want verity=webtransport", i, res.Headers["server-timing"])
		}
		stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		rec, ok := workerStat(stats, "/"+name)
		if !ok || rec.Transport != "webtransport" || rec.Failovers != 0 || rec.Bytes != size || rec.Error != "" {
			t.Fatalf("fetch %d: worker record %+v, want the whole file from the node over WebTransport with no failover", i, rec)
		}
		if reps, err := e.b.WorkerReports(e.ctx(10 * time.Second)); err != nil || len(reps) != 0 {
			t.Fatalf("fetch %d: the worker reported %+v (%v), want no report", i, reps, err)
		}
		t.Logf("fetch %d: %d bytes in %.0f ms, %+v", i, res.Size, res.Millis, rec)
	}
}

// serverTiming returns the description of the Server-Timing metric name.
func serverTiming(h, name string) string {
	for _, st := range browser.ParseServerTiming(h) {
		if st.Name == name {
			return st.Description
		}
	}
	return ""
}
