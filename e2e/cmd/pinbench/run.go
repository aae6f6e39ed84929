package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/node"
)

// Config is the benchmark's. Zero values are defaults.
type Config struct {
	SizeMiB int64  // tree size; default 256
	IPFS    string // Kubo's binary; default ipfs in $PATH
	Dir     string // scratch directory; default os.TempDir()
	// CPUProfile, when set, is where CPU profiles of Verity's steps go:
	// CPUProfile+".car" (building the CAR), CPUProfile+".pin" (the pin).
	CPUProfile string
	// Runs is how many times Kubo and Verity are timed, alternately, on
	// the same tree (default 1); Gap is the pause before each run after
	// the first, once the previous run's repo and node are deleted (ext4
	// without a journal steps over the inodes a block group freed in the
	// last minute when it makes a file: without the pause each run pays
	// for the files the one before deleted).
	Runs   int
	Gap    time.Duration
	Logger *slog.Logger
}

// Summary is the tree and every run's figures, with their medians.
type Summary struct {
	TreeBytes int64 `json:"tree_bytes"`
	TreeFiles int   `json:"tree_files"`

	Runs []*Results `json:"runs"`
	// Medians over the runs of Verity's and Kubo's rates, the ratio of
	// those medians, and the median of the runs' own ratios.
	VerityMBps  float64 `json:"verity_mbps_median"`
	KuboMBps    float64 `json:"kubo_mbps_median,omitempty"`
	Ratio       float64 `json:"ratio_of_medians,omitempty"`
	RatioMedian float64 `json:"ratio_median,omitempty"`
}

// Results are the measured figures. Rates are MB/s (10^6 bytes) of tree
// bytes.
type Results struct {
	TreeBytes int64 `json:"tree_bytes"`
	TreeFiles int   `json:"tree_files"`
	CARBytes  int64 `json:"car_bytes"`

	VerityCARSeconds float64 `json:"verity_car_seconds"`
	VerityPinSeconds float64 `json:"verity_pin_seconds"`
	VerityMBps       float64 `json:"verity_mbps"` // CAR + pin
	// CPU time (user + system) of each step: this process's over the
	// step (the pin's includes the HTTP server sending the CAR, a
	// sendfile), ipfs add's own. Less sensitive to other load than
	// the durations.
	VerityCARCPUSeconds float64 `json:"verity_car_cpu_seconds"`
	VerityPinCPUSeconds float64 `json:"verity_pin_cpu_seconds"`

	Kubo              string  `json:"kubo,omitempty"` // version, or why it did not run
	KuboOptions       string  `json:"kubo_options,omitempty"`
	KuboInitSeconds   float64 `json:"kubo_init_seconds,omitempty"`
	KuboAddSeconds    float64 `json:"kubo_add_seconds,omitempty"`
	KuboAddCPUSeconds float64 `json:"kubo_add_cpu_seconds,omitempty"`
	KuboMBps          float64 `json:"kubo_mbps,omitempty"` // init + add
	Ratio             float64 `json:"ratio,omitempty"`     // Verity / Kubo

	// Kubo's flatfs does not sync by default: ipfs add returns with the
	// blocks in the page cache. KuboFlushSeconds is a syncfs of the repo's
	// filesystem right after, the part of making them durable still owed
	// (Verity's pin figure includes its sync).
	KuboFlushSeconds float64 `json:"kubo_flush_seconds,omitempty"`
	KuboDurableMBps  float64 `json:"kubo_durable_mbps,omitempty"` // init + add + flush
	RatioDurable     float64 `json:"ratio_durable,omitempty"`     // Verity / Kubo durable
}

// kuboAddArgs are the options given to ipfs add; the rest are Kubo's
// defaults.
var kuboAddArgs = []string{"add", "-r", "-Q", "--cid-version=1", "--raw-leaves"}

// Run builds the tree, times both cfg.Runs times and prints each run's
// table to w, then the medians.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Summary, error) {
	if cfg.SizeMiB <= 0 {
		cfg.SizeMiB = 256
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	scratch, err := os.MkdirTemp(cfg.Dir, "pinbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	tree := filepath.Join(scratch, "tree")
	sum := &Summary{}
	if sum.TreeFiles, sum.TreeBytes, err = writeTree(tree, cfg.SizeMiB<<20); err != nil {
		return nil, fmt.Errorf("writing the tree: %w", err)
	}

	kubo := cfg.IPFS
	if kubo == "" {
		kubo, _ = exec.LookPath("ipfs")
	}
	for i := range cfg.Runs {
		if i > 0 && cfg.Gap > 0 {
			select {
			case <-time.After(cfg.Gap):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if cfg.Runs > 1 {
			fmt.Fprintf(w, "run %d of %d (loadavg %s)\n", i+1, cfg.Runs, loadavg())
		}
		res, err := runOnce(ctx, cfg, kubo, scratch, tree, sum)
		if err != nil {
			return nil, err
		}
		sum.Runs = append(sum.Runs, res)
		report(w, res)
	}
	sum.medians()
	if cfg.Runs > 1 {
		reportMedians(w, sum)
	}
	return sum, nil
}

// runOnce times Kubo, then Verity, each starting from a synced disk,
// with their repo, node and CAR in scratch; it deletes them after.
func runOnce(ctx context.Context, cfg Config, kubo, scratch, tree string, sum *Summary) (*Results, error) {
	defer func() {
		for _, name := range []string{"kubo", "node", "site.car"} {
			os.RemoveAll(filepath.Join(scratch, name))
		}
	}()
	syncAll() // the tree's writes, or the previous run's deletes, are charged to neither side
	dir := scratch
	res := &Results{TreeBytes: sum.TreeBytes, TreeFiles: sum.TreeFiles}
	if kubo == "" {
		res.Kubo = "not found (no -ipfs, no ipfs in $PATH): Kubo not measured"
	} else if err := runKubo(ctx, kubo, dir, tree, res); err != nil {
		res.Kubo = "failed: " + err.Error()
	}
	syncAll()
	if err := runVerity(ctx, cfg, dir, tree, res); err != nil {
		return nil, err
	}
	res.VerityMBps = mbps(res.TreeBytes, res.VerityCARSeconds+res.VerityPinSeconds)
	if res.KuboMBps > 0 {
		res.Ratio = res.VerityMBps / res.KuboMBps
	}
	if res.KuboDurableMBps > 0 {
		res.RatioDurable = res.VerityMBps / res.KuboDurableMBps
	}
	return res, nil
}

// medians fills in the medians of the runs' figures.
func (s *Summary) medians() {
	var v, k, r []float64
	for _, res := range s.Runs {
		v = append(v, res.VerityMBps)
		if res.KuboMBps > 0 {
			k = append(k, res.KuboMBps)
			r = append(r, res.Ratio)
		}
	}
	s.VerityMBps = median(v)
	if len(k) > 0 {
		s.KuboMBps = median(k)
		s.Ratio = s.VerityMBps / s.KuboMBps
		s.RatioMedian = median(r)
	}
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// loadavg is /proc/loadavg's 1-, 5- and 15-minute figures, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// runKubo times ipfs init and ipfs add of tree into a fresh repo.
func runKubo(ctx context.Context, bin, scratch, tree string, res *Results) error {
	env := append(os.Environ(), "IPFS_PATH="+filepath.Join(scratch, "kubo"))
	ver, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return fmt.Errorf("ipfs version: %w", err)
	}
	res.Kubo = strings.TrimSpace(string(ver))
	res.KuboOptions = "ipfs init; ipfs " + strings.Join(kuboAddArgs, " ") + " (defaults otherwise: size-262144 chunks, sha2-256, flatfs with sync off, leveldb)"
	var cpu time.Duration // of the last command run
	run := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("ipfs %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return time.Since(start), nil
	}
	d, err := run("init")
	if err != nil {
		return err
	}
	res.KuboInitSeconds = d.Seconds()
	if d, err = run(append(kuboAddArgs, tree)...); err != nil {
		return err
	}
	res.KuboAddSeconds = d.Seconds()
	res.KuboAddCPUSeconds = cpu.Seconds()
	res.KuboMBps = mbps(res.TreeBytes, res.KuboInitSeconds+res.KuboAddSeconds)
	start := time.Now()
	if err := syncFS(filepath.Join(scratch, "kubo")); err == nil {
		res.KuboFlushSeconds = time.Since(start).Seconds()
		res.KuboDurableMBps = mbps(res.TreeBytes, res.KuboInitSeconds+res.KuboAddSeconds+res.KuboFlushSeconds)
	}
	return nil
}

// runVerity times the CAR of tree, then a fresh node pinning it from an
// HTTP URL.
func runVerity(ctx context.Context, cfg Config, scratch, tree string, res *Results) error {
	carPath := filepath.Join(scratch, "site.car")
	f, err := os.Create(carPath)
	if err != nil {
		return err
	}
	stopProf, err := startProfile(cfg.CPUProfile, ".car")
	if err != nil {
		return err
	}
	start, cpu := time.Now(), cpuTime()
	root, err := importer.WriteCAR(ctx, tree, f, importer.Options{})
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("building the CAR: %w", err)
	}
	res.VerityCARSeconds = time.Since(start).Seconds()
	res.VerityCARCPUSeconds = (cpuTime() - cpu).Seconds()
	stopProf()
	if fi, err := os.Stat(carPath); err == nil {
		res.CARBytes = fi.Size()
	}
	// The CAR file stands for the gateway's CAR, which a node receives
	// over the network: its writeback is not the node's to pay, and the
	// node's one syncfs would otherwise flush it with the pin's blocks.
	syncAll()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.ipld.car")
		http.ServeFile(w, r, carPath)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	n, err := node.New(node.Config{
		DataDir:             filepath.Join(scratch, "node"),
		DisableWebTransport: true,
		WebRTC:              node.WebRTCConfig{Disabled: true},
		Logger:              cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("starting the node: %w", err)
	}
	defer n.Close()
	for !n.BlocksCounted() { // the empty store's background count
		time.Sleep(time.Millisecond)
	}
	if stopProf, err = startProfile(cfg.CPUProfile, ".pin"); err != nil {
		return err
	}
	start, cpu = time.Now(), cpuTime()
	if err := n.Pin(ctx, nodeproto.Pin{Root: root.String(), CAR: "http://" + ln.Addr().String() + "/site.car"}); err != nil {
		return fmt.Errorf("pinning: %w", err)
	}
	res.VerityPinSeconds = time.Since(start).Seconds()
	res.VerityPinCPUSeconds = (cpuTime() - cpu).Seconds()
	stopProf()
	if !slices.Contains(n.Pins(), root.String()) {
		return errors.New("the pin is not recorded")
	}
	return nil
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile starts a CPU profile into path+suffix, unless path is
// empty; the function returned stops it.
func startProfile(path, suffix string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeTree writes a deterministic tree of about size bytes under dir:
// files from 1 KiB to 8 MiB (most bytes in files of a few MiB, most files
// small) in nested directories.
func writeTree(dir string, size int64) (files int, total int64, err error) {
	rng := rand.New(rand.NewPCG(7, 11))
	sizes := []int{1 << 10, 4 << 10, 12 << 10, 40 << 10, 100 << 10, 300 << 10, 1 << 20, 3 << 20, 8 << 20}
	buf := make([]byte, 8<<20)
	for total < size {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", files%16), fmt.Sprintf("s%d", files%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return 0, 0, err
		}
		n := sizes[files%len(sizes)]
		if rem := size - total; int64(n) > rem {
			n = int(rem)
		}
		data := buf[:n]
		for i := 0; i+8 <= len(data); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d.bin", files)), data, 0o644); err != nil {
			return 0, 0, err
		}
		files++
		total += int64(n)
	}
	return files, total, nil
}

func mbps(bytes int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / seconds
}

// report prints the table.
func report(w io.Writer, r *Results) {
	fmt.Fprintf(w, "pin: a tree of %d files, %.1f MB (CAR %.1f MB)\n", r.TreeFiles, float64(r.TreeBytes)/1e6, float64(r.CARBytes)/1e6)
	fmt.Fprintf(w, "  verity  CAR %.2fs + pin from HTTP %.2fs = %.2fs  %7.1f MB/s  (BLAKE3, 256 KiB chunks, raw leaves, CIDv1)\n",
		r.VerityCARSeconds, r.VerityPinSeconds, r.VerityCARSeconds+r.VerityPinSeconds, r.VerityMBps)
	if r.KuboMBps == 0 {
		fmt.Fprintf(w, "  kubo    %s\n", r.Kubo)
		fmt.Fprintf(w, "  cpu     verity CAR %.2fs + pin %.2fs = %.2fs\n",
			r.VerityCARCPUSeconds, r.VerityPinCPUSeconds, r.VerityCARCPUSeconds+r.VerityPinCPUSeconds)
		return
	}
	fmt.Fprintf(w, "  kubo    init %.2fs + add %.2fs = %.2fs  %7.1f MB/s  (%s; %s)\n",
		r.KuboInitSeconds, r.KuboAddSeconds, r.KuboInitSeconds+r.KuboAddSeconds, r.KuboMBps, r.Kubo, r.KuboOptions)
	if r.KuboDurableMBps > 0 {
		fmt.Fprintf(w, "  kubo    + syncfs of its repo after add %.2fs = %.2fs  %7.1f MB/s  (Kubo's flatfs has sync off by default: add returns before its blocks are on disk)\n",
			r.KuboFlushSeconds, r.KuboInitSeconds+r.KuboAddSeconds+r.KuboFlushSeconds, r.KuboDurableMBps)
	}
	fmt.Fprintf(w, "  cpu     verity CAR %.2fs + pin %.2fs = %.2fs; kubo add %.2fs\n",
		r.VerityCARCPUSeconds, r.VerityPinCPUSeconds, r.VerityCARCPUSeconds+r.VerityPinCPUSeconds, r.KuboAddCPUSeconds)
	fmt.Fprintf(w, "  ratio   verity/kubo %.2fx", r.Ratio)
	if r.RatioDurable > 0 {
		fmt.Fprintf(w, "; against Kubo with its blocks flushed %.2fx", r.RatioDurable)
	}
	fmt.Fprintf(w, "  (Kubo hashes with sha2-256, Verity with BLAKE3)\n")
}

// reportMedians prints the medians over the runs.
func reportMedians(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "medians of %d runs: verity %.1f MB/s", len(s.Runs), s.VerityMBps)
	if s.KuboMBps > 0 {
		fmt.Fprintf(w, ", kubo %.1f MB/s: ratio %.2fx (median of the runs' ratios %.2fx; runs:", s.KuboMBps, s.Ratio, s.RatioMedian)
		for _, r := range s.Runs {
			fmt.Fprintf(w, " %.2fx", r.Ratio)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "; loadavg at the end %s\n", loadavg())
}
