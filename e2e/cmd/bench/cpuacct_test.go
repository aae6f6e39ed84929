package main

import "testing"

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		comm     string
		ticks    uint64
		ok       bool
	}{
		{"plain", "42 (chromium) S 1 42 42 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 30 0", "chromium", 1801, true},
		// A thread's comm may hold spaces and parentheses.
		{"comm with ) and spaces", "43 (ServiceWorker t) x) R 1 42 42 0 -1 0 0 0 0 0 10 5 0 0", "ServiceWorker t) x", 15, true},
		{"truncated", "44 (bench) S 1 2 3", "", 0, false},
		{"no comm", "45 bench S", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := parseStat([]byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if s.comm != tc.comm || s.ticks() != tc.ticks {
				t.Fatalf("comm %q ticks %d, want %q %d", s.comm, s.ticks(), tc.comm, tc.ticks)
			}
		})
	}
}

func TestParseBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice:
	// busy is everything but idle and iowait, guest (inside user) not twice.
	in := "cpu  100 2 30 5000 40 5 6 7 50 1\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
	if got, want := parseBusy([]byte(in)), uint64(100+2+30+5+6+7); got != want {
		t.Fatalf("busy = %d, want %d", got, want)
	}
	for _, bad := range []string{"", "\n", "intr 1 2 3 4 5", "cpu 1"} {
		if got := parseBusy([]byte(bad)); got != 0 {
			t.Fatalf("parseBusy(%q) = %d, want 0", bad, got)
		}
	}
}

func TestChromiumLabel(t *testing.T) {
	for _, tc := range []struct{ cmdline, comm, want string }{
		{"/usr/lib/chromium/chromium\x00--headless\x00--user-data-dir=/tmp/p\x00", "chromium", "browser"},
		// Helpers' command lines are rewritten with spaces.
		{"/usr/lib/chromium/chromium --type=renderer --crashpad-handler-pid=0 --renderer-client-id=7", "chromium", "renderer"},
		{"/usr/lib/chromium/chromium --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US", "chromium", "utility network.mojom.Network"},
		{"/usr/lib/chromium/chromium --type=zygote", "chromium", "zygote"},
		{"/usr/lib/chromium/chrome_crashpad_handler\x00--database=/tmp\x00", "chrome_crashpad", "chrome_crashpad"},
	} {
		if got := chromiumLabel([]byte(tc.cmdline), tc.comm); got != tc.want {
			t.Errorf("chromiumLabel(%q) = %q, want %q", tc.cmdline, got, tc.want)
		}
	}
}

// TestMerged: the visit account sums processes by kind and threads by
// name, every tick counted once.
func TestMerged(t *testing.T) {
	r := &cpuRow{name: "warm", fetches: 2, procs: map[int]*cpuProcDelta{
		10: {label: "renderer", ticks: 7, threads: map[int]*cpuThrDelta{11: {"ServiceWorker t", 3}, 12: {"ThreadPoolForeg", 4}}},
		20: {label: "renderer", ticks: 5, threads: map[int]*cpuThrDelta{21: {"ThreadPoolForeg", 2}, 22: {"ThreadPoolForeg", 1}, 23: {"chromium", 2}}},
		30: {label: "browser", ticks: 1, threads: map[int]*cpuThrDelta{31: {"chromium", 1}}},
	}}
	m := merged(r)
	if m.fetches != 2 || m.name != "warm" {
		t.Fatalf("merged row %q of %d visits, want warm of 2", m.name, m.fetches)
	}
	procs := map[string][2]uint64{}
	threads := map[string]uint64{}
	for _, p := range m.procs {
		if _, dup := procs[p.label]; dup {
			t.Fatalf("%s listed twice", p.label)
		}
		procs[p.label] = [2]uint64{p.ticks, uint64(p.count)}
		for _, th := range p.threads {
			k := p.label + "/" + th.comm
			if _, dup := threads[k]; dup {
				t.Fatalf("%s listed twice", k)
			}
			threads[k] = th.ticks
		}
	}
	if procs["renderer"] != [2]uint64{12, 2} || procs["browser"] != [2]uint64{1, 1} || len(procs) != 2 {
		t.Fatalf("processes %v", procs)
	}
	want := map[string]uint64{"renderer/ServiceWorker t": 3, "renderer/ThreadPoolForeg": 7, "renderer/chromium": 2, "browser/chromium": 1}
	if len(threads) != len(want) {
		t.Fatalf("threads %v, want %v", threads, want)
	}
	for k, v := range want {
		if threads[k] != v {
			t.Fatalf("threads %v, want %v", threads, want)
		}
	}
}
