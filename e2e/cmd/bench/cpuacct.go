package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
)

// The CPU account of the page and visit sections (VERITY_BENCH_CPU=1):
// before and after each measured fetch (or visit) of a row, the CPU time
// (utime+stime from /proc/PID/stat, and per thread from
// /proc/PID/task/TID/stat) of the bench process (gateway, nodes and NATS
// run in it) and of every process it started (Chromium's, named by their
// --type= flag), and the machine's busy time from /proc/stat; at the end
// of the row, ms of CPU per MiB fetched (per visit) per process and for
// the hottest threads, against the wall time between the snapshots. The
// visit account sums processes by kind and threads by name: each visit
// has renderers of its own. Linux only.

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on every Linux
// architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuProc is one process in a snapshot.
type cpuProc struct {
	label   string
	ticks   uint64         // utime+stime, the process's exited threads included
	threads map[int]cpuThr // by tid
}

type cpuThr struct {
	comm  string
	ticks uint64
}

// cpuSnap is the CPU of the run's processes and of the machine at one time.
type cpuSnap struct {
	at      time.Time
	procs   map[int]cpuProc
	busy    uint64 // the machine's busy ticks, all CPUs
	credits float64
}

// cpuRow accumulates the differences of a row's fetches.
type cpuRow struct {
	name    string
	fetches int
	wall    time.Duration
	pageMs  float64
	busy    uint64
	credits float64
	procs   map[int]*cpuProcDelta
}

type cpuProcDelta struct {
	label   string
	ticks   uint64
	threads map[int]*cpuThrDelta
	count   int // processes summed in it (merged)
}

type cpuThrDelta struct {
	comm  string
	ticks uint64
}

// cpuAccount is the account of one page or visit section.
type cpuAccount struct {
	d     *devnet.Devnet
	self  int
	rows  []*cpuRow
	cur   *cpuRow
	start cpuSnap
	pprof *os.File // VERITY_BENCH_CPU_PPROF: the bench's Go profile of the current row
	visit bool     // the visit section's: per visit, processes and threads summed by name
}

// newCPUAccount returns the page section's account, nil unless
// VERITY_BENCH_CPU is set.
func newCPUAccount(d *devnet.Devnet) *cpuAccount {
	if os.Getenv("VERITY_BENCH_CPU") == "" {
		return nil
	}
	return &cpuAccount{d: d, self: os.Getpid()}
}

// newVisitCPUAccount returns the visit section's account, nil unless
// VERITY_BENCH_CPU is set.
func newVisitCPUAccount(d *devnet.Devnet) *cpuAccount {
	a := newCPUAccount(d)
	if a != nil {
		a.visit = true
	}
	return a
}

// units is what a row's figures are per: MiB fetched, or visits.
func (a *cpuAccount) units(r *cpuRow) float64 {
	if a.visit {
		return float64(r.fetches)
	}
	return float64(r.fetches) * pageSize / (1 << 20)
}

// merged returns r with its processes summed by label and their threads
// by name (each keyed by the order it was first met).
func merged(r *cpuRow) *cpuRow {
	out := &cpuRow{name: r.name, fetches: r.fetches, wall: r.wall, pageMs: r.pageMs, busy: r.busy, credits: r.credits, procs: map[int]*cpuProcDelta{}}
	ids := map[string]int{}
	tids := map[string]int{}
	pids := slices.Sorted(maps.Keys(r.procs))
	for _, pid := range pids {
		p := r.procs[pid]
		id, ok := ids[p.label]
		if !ok {
			id = len(ids) + 1
			ids[p.label] = id
			out.procs[id] = &cpuProcDelta{label: p.label, threads: map[int]*cpuThrDelta{}}
		}
		m := out.procs[id]
		m.ticks += p.ticks
		m.count++
		for _, tid := range slices.Sorted(maps.Keys(p.threads)) {
			t := p.threads[tid]
			k := p.label + "\x00" + t.comm
			tid, ok := tids[k]
			if !ok {
				tid = len(tids) + 1
				tids[k] = tid
				m.threads[tid] = &cpuThrDelta{comm: t.comm}
			}
			m.threads[tid].ticks += t.ticks
		}
	}
	return out
}

// row starts the row name, or goes back to it if it was started before
// (rows measured in turn); the fetches that follow count in it.
func (a *cpuAccount) row(name string) {
	if a == nil {
		return
	}
	a.endRow()
	for _, r := range a.rows {
		if r.name == name {
			a.cur = r
			return
		}
	}
	a.cur = &cpuRow{name: name, procs: map[int]*cpuProcDelta{}}
	a.rows = append(a.rows, a.cur)
}

// begin snapshots before a measured fetch.
func (a *cpuAccount) begin(ctx context.Context) {
	if a == nil {
		return
	}
	if p := os.Getenv("VERITY_BENCH_CPU_PPROF"); p != "" && a.pprof == nil {
		if f, err := os.Create(p + "." + a.cur.name); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				a.pprof = f
			} else {
				f.Close()
			}
		}
	}
	a.start = a.snap(ctx)
}

// end snapshots after a measured fetch that took pageMs in the page and
// adds the difference to the current row.
func (a *cpuAccount) end(ctx context.Context, pageMs float64) {
	if a == nil {
		return
	}
	s := a.snap(ctx)
	r := a.cur
	r.fetches++
	r.wall += s.at.Sub(a.start.at)
	r.pageMs += pageMs
	r.busy += sub(s.busy, a.start.busy)
	r.credits += s.credits - a.start.credits
	for pid, p := range s.procs {
		before := a.start.procs[pid] // zero: started meanwhile, all of it counts
		d := r.procs[pid]
		if d == nil {
			d = &cpuProcDelta{label: p.label, threads: map[int]*cpuThrDelta{}}
			r.procs[pid] = d
		}
		d.ticks += sub(p.ticks, before.ticks)
		for tid, t := range p.threads {
			td := d.threads[tid]
			if td == nil {
				td = &cpuThrDelta{comm: t.comm}
				d.threads[tid] = td
			}
			td.ticks += sub(t.ticks, before.threads[tid].ticks)
		}
	}
}

// endRow stops the current row's Go profile, if one runs.
func (a *cpuAccount) endRow() {
	if a == nil || a.pprof == nil {
		return
	}
	pprof.StopCPUProfile()
	a.pprof.Close()
	fmt.Fprintf(os.Stderr, "wrote the bench process's Go CPU profile of the %s row to %s\n", a.cur.name, a.pprof.Name())
	a.pprof = nil
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// snap reads the CPU of the bench process, its descendants and the machine,
// and the nodes' credit stalls.
func (a *cpuAccount) snap(ctx context.Context) cpuSnap {
	s := cpuSnap{procs: map[int]cpuProc{}}
	s.busy = machineBusy()
	for _, pid := range descendants(a.self) {
		p, ok := readProc(pid, pid == a.self)
		if ok {
			s.procs[pid] = p
		}
	}
	for _, n := range a.d.Nodes() {
		if m, err := browser.Scrape(ctx, n.HTTPURL()+"/metrics"); err == nil {
			s.credits += m.Sum("verity_node_credit_stalls_total", nil)
		}
	}
	s.at = time.Now()
	return s
}

// descendants lists pid and every process under it (by parent pid).
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, ok := statFields(fmt.Sprintf("/proc/%d/stat", p)); ok {
			parent[p], _ = strconv.Atoi(f.rest[1])
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for p, pp := range parent {
			if pp == out[i] {
				out = append(out, p)
			}
		}
	}
	return out
}

// statFields splits a /proc stat file: comm, then the fields after it
// (rest[0] is the state, rest[11] utime, rest[12] stime).
type stat struct {
	comm string
	rest []string
}

func statFields(path string) (stat, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stat{}, false
	}
	return parseStat(b)
}

// parseStat parses a /proc stat file; comm may hold spaces and
// parentheses, so it ends at the last ')'.
func parseStat(b []byte) (stat, bool) {
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return stat{}, false
	}
	f := strings.Fields(string(b[closing+1:]))
	if len(f) < 13 {
		return stat{}, false
	}
	return stat{comm: string(b[open+1 : closing]), rest: f}, true
}

func (s stat) ticks() uint64 {
	u, _ := strconv.ParseUint(s.rest[11], 10, 64)
	k, _ := strconv.ParseUint(s.rest[12], 10, 64)
	return u + k
}

// readProc reads a process's CPU and its threads'.
func readProc(pid int, self bool) (cpuProc, bool) {
	dir := fmt.Sprintf("/proc/%d", pid)
	st, ok := statFields(dir + "/stat")
	if !ok {
		return cpuProc{}, false
	}
	p := cpuProc{label: procLabel(dir, st.comm, self), ticks: st.ticks(), threads: map[int]cpuThr{}}
	tasks, _ := os.ReadDir(dir + "/task")
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if ts, ok := statFields(dir + "/task/" + t.Name() + "/stat"); ok {
			p.threads[tid] = cpuThr{comm: ts.comm, ticks: ts.ticks()}
		}
	}
	return p, true
}

// procLabel names a process: the bench itself, or Chromium's by --type=
// (and the utility's --utility-sub-type, e.g. the network service).
func procLabel(dir, comm string, self bool) string {
	if self {
		return "bench (gateway, nodes, NATS)"
	}
	b, _ := os.ReadFile(dir + "/cmdline")
	return chromiumLabel(b, comm)
}

// chromiumLabel names a Chromium process from its command line.
func chromiumLabel(cmdline []byte, comm string) string {
	typ, sub := "", ""
	// Chromium rewrites its helpers' command lines with spaces between
	// the arguments.
	for _, arg := range strings.FieldsFunc(string(cmdline), func(r rune) bool { return r == 0 || r == ' ' }) {
		if v, ok := strings.CutPrefix(arg, "--type="); ok {
			typ = v
		}
		if v, ok := strings.CutPrefix(arg, "--utility-sub-type="); ok {
			sub = v
		}
	}
	switch {
	case typ == "" && comm == "chromium":
		return "browser"
	case typ == "":
		return comm
	case sub != "":
		return typ + " " + strings.TrimSuffix(sub, "Service") // network.mojom.NetworkService: "utility network.mojom.Network"
	}
	return typ
}

// machineBusy is the machine's busy time in ticks, all CPUs: /proc/stat's
// first line less idle and iowait.
func machineBusy() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return parseBusy(b)
}

// parseBusy sums the first line of /proc/stat ("cpu user nice system
// idle iowait irq softirq steal guest guest_nice") less idle and iowait.
func parseBusy(b []byte) uint64 {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:] {
		if i >= 8 { // guest time is counted in user already
			break
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy
}

// report prints each row's account to w and adds the CPU per MiB of the
// run's processes in each row to res, and the raw row's over the
// worker's: the throughput ratio the two rows would have if both were
// bound by the CPU of the same cores, whatever else runs on them.
func (a *cpuAccount) report(w io.Writer, res *Results) {
	if a == nil {
		return
	}
	a.endRow()
	for _, r := range a.rows {
		if r.fetches == 0 {
			continue
		}
		var ours uint64
		for _, p := range r.procs {
			ours += p.ticks
		}
		cpu := float64(time.Duration(ours)*clockTick) / 1e6 / a.units(r)
		if a.visit {
			res.add("visit_cpu_"+r.name, cpu, "ms", "CPU of the bench process and Chromium's per visit (VERITY_BENCH_CPU)")
		} else {
			res.add("page_cpu_"+r.name, cpu, "ms/MiB", "CPU of the bench process and Chromium's per MiB fetched (VERITY_BENCH_CPU)")
		}
	}
	if raw, ok := res.value("page_cpu_raw"); ok {
		if worker, ok := res.value("page_cpu_worker"); ok && worker > 0 {
			res.add("ratio_cpu_raw_vs_worker", raw/worker, "x", "CPU per MiB, raw WebTransport over the worker")
		}
	}
	a.write(w)
}

// write prints each row's account to w.
func (a *cpuAccount) write(w io.Writer) {
	ms := func(ticks uint64) float64 { return float64(time.Duration(ticks)*clockTick) / 1e6 }
	load, _ := os.ReadFile("/proc/loadavg")
	section, unit := "page", "ms/MiB"
	if a.visit {
		section, unit = "visit", "ms/visit"
	}
	fmt.Fprintf(w, "CPU account of the %s section (%s of CPU; /proc/loadavg %s)\n", section, unit, strings.TrimSpace(string(load)))
	for _, r := range a.rows {
		if r.fetches == 0 {
			continue
		}
		if a.visit {
			r = merged(r)
		}
		n := a.units(r)
		var ours uint64
		for _, p := range r.procs {
			ours += p.ticks
		}
		wall := r.wall.Seconds() * 1000
		if a.visit {
			fmt.Fprintf(w, "\n%s: %d visits, wall %.0f ms between snapshots\n", r.name, r.fetches, wall)
		} else {
			fmt.Fprintf(w, "\n%s: %d fetches, wall %.0f ms between snapshots (%.0f in the page), %.1f MB/s; credit stalls %.0f\n",
				r.name, r.fetches, wall, r.pageMs, float64(r.fetches)*pageSize/r.pageMs/1e3, r.credits)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "process\tpid\t%s\tcores\t\n", unit)
		procs := slices.Collect(maps.Keys(r.procs))
		slices.SortFunc(procs, func(x, y int) int { return cmp.Compare(r.procs[y].ticks, r.procs[x].ticks) })
		for _, pid := range procs {
			p := r.procs[pid]
			if p.ticks == 0 {
				continue
			}
			id := strconv.Itoa(pid)
			if a.visit {
				id = strconv.Itoa(p.count) + " processes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t\n", p.label, id, ms(p.ticks)/n, ms(p.ticks)/wall)
		}
		fmt.Fprintf(tw, "run's processes\t\t%.1f\t%.2f\t\n", ms(ours)/n, ms(ours)/wall)
		fmt.Fprintf(tw, "rest of the machine\t\t%.1f\t%.2f\t\n", ms(sub(r.busy, ours))/n, ms(sub(r.busy, ours))/wall)
		fmt.Fprintf(tw, "machine busy\t\t%.1f\t%.2f\t\n", ms(r.busy)/n, ms(r.busy)/wall)
		tw.Flush()

		type thr struct {
			proc, comm string
			tid        int
			ticks      uint64
		}
		var thrs []thr
		for _, p := range r.procs {
			for tid, t := range p.threads {
				if t.ticks > 0 {
					thrs = append(thrs, thr{p.label, t.comm, tid, t.ticks})
				}
			}
		}
		slices.SortFunc(thrs, func(x, y thr) int { return cmp.Compare(y.ticks, x.ticks) })
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "thread\tof\t%s\tcores\t\n", unit)
		// The hottest, and every thread of 0.3 ms per MiB (per visit: 10
		// ms) or more.
		least := 0.3
		if a.visit {
			least = 10
		}
		for i, t := range thrs {
			if i >= 20 || i >= 8 && ms(t.ticks)/n < least {
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t\n", t.comm, t.proc, ms(t.ticks)/n, ms(t.ticks)/wall)
		}
		tw.Flush()
	}
}
