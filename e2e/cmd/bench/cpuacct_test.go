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
