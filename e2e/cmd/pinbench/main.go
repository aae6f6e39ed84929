// Command pinbench measures how fast a Verity node pins a tree, against
// Kubo adding the same tree to its repo, in the same run on the same disk.
//
// It writes a deterministic tree of mixed file sizes (-size-mib) into a
// temporary directory, then times:
//
//   - Kubo: `ipfs init` and `ipfs add -r --cid-version=1 --raw-leaves` of
//     the tree into a fresh repo (Kubo's defaults otherwise: 256 KiB
//     chunks, sha2-256, flatfs with sync off), then a syncfs of the repo's
//     filesystem: what Kubo still owes to have its blocks on disk;
//   - Verity: the CAR of the tree (what `verity deploy` builds: 256 KiB
//     chunks, raw leaves, CIDv1, BLAKE3), then a fresh node pinning it from
//     an HTTP URL as a pin order has it do (node.Pin: fetch, carcheck's
//     rules as the CAR streams in, store, one sync, the pin recorded).
//     The CAR file is flushed between the two, untimed: it stands for the
//     gateway's CAR, which a node receives over the network, and the
//     node's one syncfs would otherwise write it out with the pin.
//
// and prints MB/s of tree bytes for each and the ratio, and the CPU time
// of each step (steadier than the durations on a machine other work
// loads; -cpuprofile writes Verity's two steps' profiles). Without an ipfs
// binary (-ipfs, else $PATH) it says so and prints Verity's figure only.
//
// With -runs N it times both N times on the same tree, Kubo then Verity
// each time, each run's repo, node and CAR deleted after it and the next
// started -gap later (65 s: ext4 without a journal makes a file slower
// the more inodes its block group freed in the last minute), and prints
// each run, /proc/loadavg before it, and the medians: Verity's and
// Kubo's rates, their ratio, and the median of the runs' ratios.
//
// Usage (from the repository root):
//
//	go run ./e2e/cmd/pinbench [-size-mib 256] [-ipfs /work/tools/ipfs] [-dir /var/tmp] [-runs 1] [-gap 65s] [-out pin-bench.json] [-cpuprofile cpu]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	fl := flag.NewFlagSet("pinbench", flag.ExitOnError)
	fl.Int64Var(&cfg.SizeMiB, "size-mib", 256, "size of the tree, MiB")
	fl.StringVar(&cfg.IPFS, "ipfs", "", "Kubo's ipfs binary (default: ipfs in $PATH)")
	fl.StringVar(&cfg.Dir, "dir", "", "where the tree, the Kubo repo and the node's data go (default: the system temp dir)")
	out := fl.String("out", "", "also write the results as JSON to this file")
	fl.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write CPU profiles of Verity's two steps to this path + .car and + .pin (of the last run)")
	fl.IntVar(&cfg.Runs, "runs", 1, "time Kubo then Verity this many times on the same tree, printing each run and the medians")
	fl.DurationVar(&cfg.Gap, "gap", 65*time.Second, "pause before each run after the first (see Config.Gap)")
	fl.Parse(os.Args[1:])
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pinbench:", err)
		os.Exit(1)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "pinbench:", err)
			os.Exit(1)
		}
	}
}
