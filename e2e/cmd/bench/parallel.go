package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/web"
)

// The parallel-fetch measurements: nodes capped with node.Config.MaxEgress
// (`verity node --max-egress`), so each node is the bottleneck.
const (
	parFile    = "bench/parallel-48m.bin"
	parSize    = 48 << 20
	parEgress  = 8 << 20 // bytes per second per node
	memFile    = "bench/stream-big.bin"
	defaultBig = 2048 // MiB streamed for the memory row
)

// parallelBench measures, in Chromium through the worker: the throughput of
// a 48 MiB file from one node and from two nodes, each node capped at
// 8 MiB/s, and the worker's peak memory while streaming a file of
// cfg.BigMiB (default 2 GiB). Each part runs its own devnet.
func parallelBench(ctx context.Context, cfg Config, tmp string, res *Results) error {
	var (
		mbs     [2]float64
		stopped []float64
	)
	for i, nodes := range []int{1, 2} {
		dir := filepath.Join(tmp, fmt.Sprintf("par-%d", nodes))
		sum, err := benchSite(dir, parFile, parSize)
		if err != nil {
			return err
		}
		err = withDevnet(ctx, cfg, dir, nodes, parEgress, func(d *devnet.Devnet, b *browser.Browser) error {
			var runs []float64
			for range cfg.Runs {
				r, err := streamThroughWorker(ctx, b, parFile, parSize, sum)
				if err != nil {
					return fmt.Errorf("%d node(s): %w", nodes, err)
				}
				runs = append(runs, float64(parSize)/(r.Millis/1000)/1e6)
			}
			mbs[i] = median(runs)
			if nodes == 2 {
				if stopped, err = stoppedReader(ctx, b, d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	note := fmt.Sprintf("48 MiB through the worker, each node capped at %d MiB/s (--max-egress)", parEgress>>20)
	res.add("parallel_1_node", mbs[0], "MB/s", note)
	res.add("parallel_2_nodes", mbs[1], "MB/s", note+", split in segments")
	res.ratio("ratio_parallel_2_vs_1", "parallel_2_nodes", "parallel_1_node", "two nodes over one, each the bottleneck")
	res.add("parallel_stopped_reader_node_bytes", median(stopped), "B", fmt.Sprintf("the same file from 2 nodes, the page reading its first %d KiB, then nothing for %v before it cancels: the bytes the nodes sent (verity_node_bytes_sent_total, transports but http); median of %d", stoppedKeep>>10, stoppedFor, len(stopped)))

	big := cfg.BigMiB
	if big <= 0 {
		big = defaultBig
	}
	dir := filepath.Join(tmp, "mem")
	start := time.Now()
	sum, err := benchSite(dir, memFile, int64(big)<<20)
	if err != nil {
		return err
	}
	return withDevnet(ctx, cfg, dir, 2, 0, func(d *devnet.Devnet, b *browser.Browser) error {
		fmt.Fprintf(os.Stderr, "devnet with %d MiB up in %s\n", big, time.Since(start).Round(time.Millisecond))
		before, err := b.WorkerScores(ctx)
		if err != nil {
			return err
		}
		// Sample the worker's JS heap over CDP while it streams.
		var heap int64
		sctx, stopSampling := context.WithCancel(ctx)
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for sctx.Err() == nil {
				if h, err := b.WorkerJSHeap(sctx); err == nil && h > heap {
					heap = h
				}
				select {
				case <-sctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
		r, err := streamThroughWorker(ctx, b, memFile, int64(big)<<20, sum)
		stopSampling()
		<-sampled
		if err != nil {
			return fmt.Errorf("%d MiB: %w", big, err)
		}
		after, err := b.WorkerScores(ctx)
		if err != nil {
			return err
		}
		res.add("worker_wasm_memory_before", float64(before.Memory.WasmBytes)/(1<<20), "MiB", "Go wasm linear memory after the first page load")
		res.add(fmt.Sprintf("worker_wasm_memory_%dm", big), float64(after.Memory.WasmBytes)/(1<<20), "MiB",
			fmt.Sprintf("peak (memory.buffer.byteLength only grows) after streaming %d MiB through the worker, 2 nodes", big))
		if heap > 0 {
			res.add(fmt.Sprintf("worker_js_heap_%dm", big), float64(heap)/(1<<20), "MiB", "largest JS heap in use sampled over CDP every 0.5 s during that stream")
		}
		res.add(fmt.Sprintf("stream_%dm_worker", big), float64(int64(big)<<20)/(r.Millis/1000)/1e6, "MB/s", "the same stream's throughput, 2 nodes, no cap")
		return nil
	})
}

// benchSite writes the demo site plus name (size deterministic bytes,
// generated in chunks) into dir and returns the file's Adler-32.
func benchSite(dir, name string, size int64) (uint32, error) {
	if err := os.CopyFS(dir, web.Demo); err != nil {
		return 0, fmt.Errorf("copy demo site: %w", err)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	h := adler32.New()
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'i', 'g'}))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		for i := 0; i+8 <= int(n); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		w.Write(buf[:n])
		h.Write(buf[:n])
		left -= n
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return h.Sum32(), f.Close()
}

// withDevnet runs a devnet of nodes (each capped at egress bytes/s, 0: no
// cap) publishing dir, opens a fresh browser on the site controlled by the
// worker, and calls fn.
func withDevnet(ctx context.Context, cfg Config, dir string, nodes int, egress int64, fn func(*devnet.Devnet, *browser.Browser) error) error {
	d, err := devnet.New(ctx, devnet.Config{
		DataDir:       dir + "-devnet",
		Listen:        "127.0.0.1:0",
		Nodes:         nodes,
		DemoDir:       dir,
		NodeMaxEgress: egress,
		// The memory row's site is larger than the deploy default (1 GiB).
		MaxDeployBytes: 8 << 30,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	defer os.RemoveAll(dir + "-devnet")
	defer d.Close()
	stop, err := runDevnet(ctx, d, 10*time.Minute)
	if err != nil {
		return err
	}
	defer stop()
	b, err := startBrowser(ctx, dir+"-profile")
	if err != nil {
		return err
	}
	defer b.Close()
	site := strings.TrimRight(d.SiteURL(devnet.SiteName), "/")
	if err := b.Navigate(ctx, site+"/"); err != nil {
		return err
	}
	if err := b.WaitController(ctx); err != nil {
		return err
	}
	// The worker script answers from the network while the wasm boots:
	// the streams measured are the Go worker's.
	if err := waitGoWorker(ctx, b); err != nil {
		return err
	}
	// As a visitor's browser: no DevTools event per chunk of a body.
	events, err := quietNetworkEvents(ctx, b)
	if err != nil {
		return err
	}
	if err := fn(d, b); err != nil {
		return err
	}
	return events.none("parallel", 0)
}

// streamThroughWorker fetches name in the page through the worker and
// checks its size and checksum.
func streamThroughWorker(ctx context.Context, b *browser.Browser, name string, size int64, sum uint32) (browser.StreamResult, error) {
	r, err := b.StreamFetch(ctx, "/"+name, &browser.FetchOptions{Cache: "no-store"})
	if err != nil {
		return r, err
	}
	if r.Status != http.StatusOK || r.Error != "" || r.Size != size || r.Adler32 != sum {
		return r, fmt.Errorf("status %d, error %q, %d bytes, adler32 %08x; want %d bytes, %08x", r.Status, r.Error, r.Size, r.Adler32, size, sum)
	}
	if tr, _ := timing(r.Headers["server-timing"], "verity"); tr != "webtransport" {
		return r, errors.New("not served by the worker over WebTransport: Server-Timing " + r.Headers["server-timing"])
	}
	return r, nil
}

// The reader that stops: it takes stoppedKeep bytes of the parallel file,
// as a media element loading a large video's metadata does, then reads
// nothing for stoppedFor and cancels.
const (
	stoppedKeep = 64 << 10
	stoppedFor  = time.Second
)

// stoppedReaderJS fetches url through the worker, reads keep bytes, waits
// ms and cancels the body; it returns the bytes read.
const stoppedReaderJS = `async (url, keep, ms) => {
	const r = await fetch(url, {cache: 'no-store'});
	const rd = r.body.getReader();
	let n = 0;
	while (n < keep) {
		const {value, done} = await rd.read();
		if (done) break;
		n += value.byteLength;
	}
	await new Promise(res => setTimeout(res, ms));
	await rd.cancel();
	return n;
}`

// stoppedReader measures three times the bytes d's nodes send while a page
// reads the first stoppedKeep bytes of parFile and stops: what the worker
// fetches ahead of a reader that never comes back, verified and paid for.
func stoppedReader(ctx context.Context, b *browser.Browser, d *devnet.Devnet) ([]float64, error) {
	var out []float64
	for i := range 3 {
		var read int64
		sent, err := nodeBytesDuring(ctx, d, func() (err error) {
			read, err = browser.Call[int64](ctx, b, stoppedReaderJS, fmt.Sprintf("/%s?stopped=%d", parFile, i), stoppedKeep, stoppedFor.Milliseconds())
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("stopped reader: %w", err)
		}
		if read < stoppedKeep {
			return nil, fmt.Errorf("stopped reader: the body ended after %d bytes", read)
		}
		out = append(out, sent)
	}
	return out, nil
}

func timing(h, name string) (string, bool) {
	for _, st := range browser.ParseServerTiming(h) {
		if st.Name == name {
			return st.Description, true
		}
	}
	return "", false
}
