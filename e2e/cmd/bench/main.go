// Command bench measures Verity end to end on this machine and prints a
// table (also written as JSON to bench-results.json):
//
//   - BLAKE3 hashing and CAR verification (internal/verify) speed, natively
//     and compiled to wasm (run under Node.js);
//   - the throughput of a 32 MiB asset into a page through the worker over
//     WebTransport, through a raw WebTransport stream from the page with no
//     worker and no verification, and through plain gateway HTTP with the
//     worker bypassed (each measured body counted in the page through a
//     reader; each row's warm-up body checked with SHA-256);
//   - the worker's start: register → active → controlling, and a fetch
//     that cold-starts a stopped worker next to a warm one;
//   - the time to the first verified byte of a 1 MiB asset on a new
//     connection, from the gateway 80 ms away (RTT) versus from a node 10 ms
//     away, emulated with e2e/netem TCP forwarders;
//   - the same through the worker in Chromium from a node 10 ms away over
//     WebTransport, protocol v1 (plain CAR) against v2 (bao16, verified
//     16 KiB at a time), alternating in one run, session open and worker
//     stopped;
//   - in Chromium, the time to the first frame of the demo's MP4 and the
//     latency of a seek into its unbuffered middle, through the worker from
//     nodes 10 ms away versus from the gateway 80 ms away with the worker
//     bypassed (netem UDP and TCP forwarders), and the bytes the nodes send
//     while a <video preload=metadata> loads through the worker;
//     VERITY_BENCH_VIDEO_NET=1 prints each media request's DevTools
//     Network events (its Range, the worker's steps, first and last bytes),
//     with the Network domain on, which costs the worker rows CPU;
//   - the same asset through the worker over WebRTC, from a node that
//     offers only WebRTC, and over a raw data channel read in the page
//     (the bench re-runs itself inside a network namespace with only lo
//     for that, see webrtc.go);
//   - the size of the worker's wasm, raw and gzipped;
//   - the throughput of a 48 MiB file through the worker from one node and
//     from two nodes at once, each node capped at 8 MiB/s (--max-egress);
//   - the worker's peak wasm memory while streaming a 2 GiB file (-big-mib),
//     and its largest JS heap sampled over CDP meanwhile;
//   - what a visitor feels (section visit, visit.go): the load-event time
//     of a generated site (36 resources and the HTML, 1.35 MB: stylesheets,
//     scripts, preloaded WOFF2 fonts, PNG, JPEG and SVG images, the loader;
//     visitsite.go) in Chromium, gateway 80 ms and nodes 10 ms away (RTT),
//     median of at least 5 runs each: through the warm worker (its cache
//     emptied, and again with it kept), with the worker stopped first
//     (ServiceWorker.stopAllWorkers; its cache emptied, kept, and kept with
//     its session ten minutes past its ttl), with the worker
//     bypassed (the gateway only), from net/http's FileServer of the same
//     files 10 ms away (the ideal), on a natural repeat visit with
//     every cache on, with the bytes the nodes sent meanwhile, and after
//     the page was left open 45 s with DevTools detached from the worker
//     (-visit-idle visits, 3 by default: the browser stops an idle
//     worker unless the page keeps it running); then the
//     per-request overhead: a 2 KiB asset fetched from the page with cache
//     'no-store', 20 times, through the warm worker, from the plain server
//     and from the gateway. With -visit-site DIR the section measures that
//     static site instead (deployed as it is, its index.html given the
//     loader if it has none; every resource must load with a 2xx or 3xx). The TCP forwarders (gateway, plain server)
//     terminate TCP: a new connection's handshake and its slow start run
//     over loopback with no delay, and the delay line has no congestion
//     window, so those rows pay one delay per exchange and nothing for a
//     connection's start; the nodes' UDP forwarder delays every datagram,
//     so QUIC's handshake and congestion control run over the delay (the
//     rows' notes say so). VERITY_BENCH_TIMINGS=1 prints every resource's
//     timing and Server-Timing, and the worker's cache counters after the
//     repeat visits, to stderr; in the ttfb-worker rows, each fetch's
//     response head, first body chunk and last byte in the page and the
//     worker's Server-Timing (its ttfb: Client.Fetch to the verified
//     entity). VERITY_BENCH_CPU=1 prints, for each row of the page
//     section, the CPU per MiB of every process of the run (the bench
//     process, which runs the gateway and the nodes, and Chromium's by
//     type) and of their hottest threads, and adds page_cpu_* rows
//     (cpuacct.go); VERITY_BENCH_CPU_PPROF=path also writes the bench
//     process's Go CPU profile of each row to path.ROW.
//
// Every section measures with the tab's DevTools Network domain off, as a
// visitor's browser runs (no event per chunk of a body relayed to the
// bench); the rows that bypass the worker need it and turn it on for their
// fetches only, and a section whose quiet rows see a Network.dataReceived
// event fails (netevents.go).
//
// Usage (from the repository root, after `make build`):
//
//	go run ./e2e/cmd/bench [-out bench-results.json] [-runs 3] [-timeout 15m] [-big-mib 2048] [-credit-window BYTES] [-only verify,ttfb-worker] [-visit-site DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	fl := flag.NewFlagSet("bench", flag.ExitOnError)
	fl.StringVar(&cfg.Out, "out", "bench-results.json", "JSON results file")
	fl.StringVar(&cfg.WorkerWasm, "wasm", "serviceworker/dist/verity.wasm", "the worker's wasm (built by make wasm)")
	fl.IntVar(&cfg.Runs, "runs", 3, "runs per page measurement (the median is reported)")
	fl.DurationVar(&cfg.Timeout, "timeout", 15*time.Minute, "bound on the whole benchmark")
	fl.IntVar(&cfg.BigMiB, "big-mib", 2048, "MiB streamed through the worker for the peak memory row")
	fl.Uint64Var(&cfg.CreditWindow, "credit-window", 0, "the nodes' credit window in bytes in the verify, page and ttfb sections (default: the nodes' default)")
	fl.StringVar(&cfg.VisitSite, "visit-site", "", "a static site's directory (index.html and what it loads) for the visit section to measure instead of its generated page")
	fl.IntVar(&cfg.VisitIdle, "visit-idle", 3, "visits of the visit section after the page was left open for 45 s (0: none; each takes that long)")
	verbose := fl.Bool("v", false, "log the devnet")
	only := fl.String("only", "", "comma-separated sections to run ("+strings.Join(Sections, ", ")+"); default all")
	fl.Parse(os.Args[1:])
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			if !slices.Contains(Sections, s) {
				fmt.Fprintf(os.Stderr, "bench: unknown section %q (sections: %s)\n", s, strings.Join(Sections, ", "))
				os.Exit(2)
			}
			cfg.Only = append(cfg.Only, s)
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if ran, code := reexecInNetns(); ran {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
