package browser

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var subreaperOnce sync.Once

// becomeSubreaper makes this process the child subreaper of its descendants,
// so Chromium helpers whose parent exits are reparented here (and reaped by
// reapOrphans) instead of becoming zombies of init in a container.
func becomeSubreaper() {
	subreaperOnce.Do(func() {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	})
}

// killUsing kills every process whose command line has the argument arg
// (Chromium passes --user-data-dir to each of its helpers). It looks again
// until a pass finds nothing, for at most a second.
func killUsing(arg string) {
	self := os.Getpid()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n := 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for a := range bytes.SplitSeq(cmdline, []byte{0}) {
				if string(a) == arg {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					n++
					break
				}
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procStat is the part of /proc/PID/stat reapOrphans needs.
type procStat struct {
	comm  string
	state byte
	ppid  int
	pgrp  int
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{comm: s[open+1 : closing], state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// live holds the main process ids of the browsers that are running; their
// processes are never killed or reaped by another browser's Close.
var live struct {
	sync.Mutex
	pids map[int]bool
}

func setLive(pid int, on bool) {
	live.Lock()
	defer live.Unlock()
	if live.pids == nil {
		live.pids = map[int]bool{}
	}
	if on {
		live.pids[pid] = true
	} else {
		delete(live.pids, pid)
	}
}

func isLive(st procStat, pid int) bool {
	live.Lock()
	defer live.Unlock()
	return live.pids[pid] || live.pids[st.pgrp]
}

// reapOrphans waits for the processes of the browser whose process group is
// pgid that are children of this process (the main process and the helpers
// reparented here), for at most limit: it kills the live ones and reaps the
// zombies. Zombie Chromium helpers of no running browser (whose group
// changed) are reaped too. Go's os/exec waits for our other children itself.
func reapOrphans(pgid int, limit time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(limit)
	for {
		left := 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, ok := readStat(pid)
			if !ok || st.ppid != self || isLive(st, pid) {
				continue
			}
			ours := pgid > 0 && st.pgrp == pgid
			if !ours {
				c := strings.ToLower(st.comm)
				if st.state != 'Z' || !(strings.Contains(c, "chrom") || strings.Contains(c, "crashpad")) {
					continue
				}
			}
			if st.state != 'Z' {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				left++
				continue
			}
			var ws syscall.WaitStatus
			if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got != pid {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
