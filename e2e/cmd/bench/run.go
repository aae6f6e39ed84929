package main

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/node"
	"github.com/verity-cdn/verity/web"
)

// Config configures a benchmark run.
type Config struct {
	Out        string // JSON results file; "" writes none
	WorkerWasm string // the worker's wasm, for its size
	Runs       int    // runs per page measurement; default 3
	BigMiB     int    // MiB streamed for the worker memory row; default 2048
	// CreditWindow is the nodes' credit window in the verify, page and
	// ttfb sections (node.PaymentConfig.CreditWindow); 0: the nodes'
	// default.
	CreditWindow uint64
	Timeout      time.Duration // bound on the whole run; default 4m
	// VisitSite, when set, is a static site's directory (an index.html
	// and what it loads) the visit section measures instead of the page
	// it generates (visitsite.go).
	VisitSite string
	// VisitIdle is the number of visits the visit section makes after the
	// page was left open for visitIdleFor (visit_worker_idle_cached);
	// 0 leaves the row out. Each takes visitIdleFor more.
	VisitIdle int
	// Only lists the sections to run (Sections); empty: all of them.
	Only   []string
	Logger *slog.Logger
}

// Sections are the parts of a run, in order; Config.Only selects some.
var Sections = []string{"verify", "page", "ttfb", "ttfb-worker", "video", "webrtc", "parallel", "visit"}

// want reports whether the section runs.
func (c Config) want(section string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, s := range c.Only {
		if s == section {
			return true
		}
	}
	return false
}

// The files the bench adds to the demo site.
const (
	pageFile   = "bench/asset-32m.bin" // page throughput
	verifyFile = "bench/file-64m.bin"  // verification speed
	ttfbFile   = "bench/asset-1m.bin"  // time to first byte at a distance
	pageSize   = 32 << 20
	verifySize = 64 << 20
	ttfbSize   = 1 << 20
)

// Run runs every measurement and reports to stdout.
func Run(ctx context.Context, cfg Config, stdout io.Writer) error {
	if cfg.Runs <= 0 {
		cfg.Runs = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := browser.CheckInstalled(""); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	res := &Results{Time: time.Now().UTC(), Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())}
	if err := wasmSize(cfg.WorkerWasm, res); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "verity-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	siteDir := filepath.Join(tmp, "site")
	sums, err := makeSite(siteDir)
	if err != nil {
		return err
	}

	if cfg.want("verify") || cfg.want("page") || cfg.want("ttfb") {
		start := time.Now()
		d, err := devnet.New(ctx, devnet.Config{
			DataDir: filepath.Join(tmp, "devnet"),
			Listen:  "127.0.0.1:0",
			Nodes:   2,
			DemoDir: siteDir,
			Logger:  cfg.Logger,

			NodePayments: node.PaymentConfig{CreditWindow: cfg.CreditWindow},
		})
		if err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
		defer d.Close()
		stop, err := runDevnet(ctx, d, 30*time.Second)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(os.Stderr, "devnet up (97 MiB imported into 2 nodes) in %s\n", time.Since(start).Round(time.Millisecond))

		if cfg.want("verify") {
			if err := verifySpeed(ctx, d, tmp, res); err != nil {
				return err
			}
		}
		if cfg.want("page") {
			if err := pageSpeed(ctx, cfg, d, sums[pageFile], tmp, res); err != nil {
				return err
			}
		}
		if cfg.want("ttfb") {
			if err := ttfbDistance(ctx, cfg, d, res); err != nil {
				return err
			}
		}
	}
	// A section that fails is reported and the others still run: the
	// table holds every row measured, and the run exits non-zero.
	var failed []error
	for _, sec := range []struct {
		name string
		run  func() error
	}{
		{"ttfb-worker", func() error { return ttfbWorker(ctx, cfg, tmp, res) }},
		{"video", func() error { return videoDistance(ctx, cfg, tmp, res) }},
		{"webrtc", func() error { return webrtcSpeed(ctx, cfg, tmp, sums[pageFile], res) }},
		{"parallel", func() error { return parallelBench(ctx, cfg, tmp, res) }},
		{"visit", func() error { return visitSpeed(ctx, cfg, tmp, res) }},
	} {
		if !cfg.want(sec.name) {
			continue
		}
		if err := sec.run(); err != nil {
			err = fmt.Errorf("%s: %w", sec.name, err)
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			failed = append(failed, err)
		}
	}

	res.ratio("ratio_worker_wt_vs_raw_wt", "page_worker_webtransport", "page_raw_webtransport", "worker+verify over raw stream")
	res.ratio("ratio_floor_pipe_vs_raw_wt", "page_floor_pipe_webtransport", "page_floor_raw_webtransport", "the stream through a service worker that pipes it untouched, over the page's own read (measured in turn)")
	res.ratio("ratio_floor_js_vs_raw_wt", "page_floor_js_webtransport", "page_floor_raw_webtransport", "the same, each chunk passed on by the worker's script")
	res.ratio("ratio_floor_copy_vs_raw_wt", "page_floor_copy_webtransport", "page_floor_raw_webtransport", "the same, fresh 1 MiB copies passed on: the ceiling of a worker that hands the page copies")
	res.ratio("ratio_worker_wt_vs_floor_copy", "page_worker_webtransport", "page_floor_copy_webtransport", "worker+verify over a service worker that only copies the chunks on")
	res.ratio("ratio_worker_wt_vs_gateway_http", "page_worker_webtransport", "page_gateway_http", "worker+verify over plain HTTP")
	res.ratio("ratio_worker_webrtc_vs_raw_webrtc", "page_worker_webrtc", "page_raw_webrtc", "worker+verify+bridge over raw data channel")
	res.ratio("ratio_worker_webrtc_vs_wt", "page_worker_webrtc", "page_worker_webtransport", "worker+verify, WebRTC bridge over WebTransport")
	res.ratio("ratio_worker_webrtc_vs_gateway_http", "page_worker_webrtc", "page_gateway_http", "worker+verify over WebRTC vs plain HTTP")
	res.ratio("ratio_verify_wasm_vs_native", "verify_wasm", "verify_native", "")
	res.ratio("ratio_ttfb_gateway_vs_node", "ttfb_1m_gateway_80ms", "ttfb_1m_node_10ms", "first byte, gateway 80 ms vs node 10 ms")

	res.Targets = checkTargets(res)
	if err := res.writeTable(stdout); err != nil {
		return err
	}
	if err := writeTargets(stdout, res.Targets); err != nil {
		return err
	}
	if cfg.Out != "" {
		if err := res.writeJSON(cfg.Out); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", cfg.Out)
	}
	return errors.Join(failed...)
}

// makeSite writes the demo site plus the bench's files into dir and returns
// the hex SHA-256 of the added files.
func makeSite(dir string) (map[string]string, error) {
	if err := os.CopyFS(dir, web.Demo); err != nil {
		return nil, fmt.Errorf("copy demo site: %w", err)
	}
	sums := map[string]string{}
	rng := rand.New(rand.NewChaCha8([32]byte{'v', 'e', 'r', 'i', 't', 'y'}))
	for name, size := range map[string]int{pageFile: pageSize, verifyFile: verifySize, ttfbFile: ttfbSize} {
		data := make([]byte, size)
		for i := 0; i+8 <= len(data); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		s := sha256.Sum256(data)
		sums[name] = hex.EncodeToString(s[:])
	}
	return sums, nil
}

// wasmSize records the worker wasm's size, raw and gzipped: by `gzip -9`,
// as the Makefile's budget measures it, or where gzip is missing by Go's
// compress/gzip at level 9, which compresses about 1% less.
func wasmSize(path string, res *Results) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is missing: run `make build` (or `make bench`) first", path)
		}
		return err
	}
	res.add("wasm_size_raw", float64(len(b))/1e6, "MB", strings.TrimPrefix(path, "./"))
	if out, err := exec.Command("gzip", "-9", "-c", path).Output(); err == nil {
		res.add("wasm_size_gzip", float64(len(out)), "B", "gzip -9, as the Makefile's budget of 1 MiB (1,048,576 B) measures it")
		return nil
	}
	var gz countWriter
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	res.add("wasm_size_gzip", float64(gz.n), "B", "Go's compress/gzip at level 9 (gzip not found; gzip -9, the budget's measure, gives about 1% less)")
	return nil
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
