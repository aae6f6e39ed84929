package testutil

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message instead
// of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	start := time.Now()
	Eventually(t, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("%d calls, want 3", calls)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s for three checks", d)
	}
}

func TestEventuallyFailsWithWhatAndTheLastState(t *testing.T) {
	t.Setenv(ScaleEnv, "")
	f := &fatalRecorder{TB: t}
	n := 0
	EventuallyErr(f, 20*time.Millisecond, "the answer", func() error { n++; return fmt.Errorf("got %d", n) })
	if n < 2 {
		t.Errorf("checked %d times, want at least twice (at once and at the deadline)", n)
	}
	want := fmt.Sprintf("waiting for the answer: timed out after 20ms (VERITY_TEST_TIMEOUT_SCALE scales every wait); last: got %d", n)
	if f.msg != want {
		t.Errorf("message %q, want %q", f.msg, want)
	}

	f = &fatalRecorder{TB: t}
	Eventually(f, time.Millisecond, "nothing", func() bool { return false })
	if !strings.HasPrefix(f.msg, "waiting for nothing: timed out after 1ms") || strings.Contains(f.msg, "last") {
		t.Errorf("message %q", f.msg)
	}
}

func TestWaitKeepsTheLastError(t *testing.T) {
	errBusy := errors.New("busy")
	if err := Wait(time.Millisecond, func() error { return errBusy }); !errors.Is(err, errBusy) {
		t.Fatalf("Wait: %v, want one wrapping %v", err, errBusy)
	}
	if err := Wait(time.Millisecond, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
	}{
		{"", 10 * time.Second},
		{"1", 10 * time.Second},
		{"2.5", 25 * time.Second},
		{"0.5", 5 * time.Second},
	} {
		t.Setenv(ScaleEnv, tc.env)
		if got := Scale(10 * time.Second); got != tc.want {
			t.Errorf("%s=%q: Scale(10s) = %s, want %s", ScaleEnv, tc.env, got, tc.want)
		}
	}
	for _, bad := range []string{"0", "-1", "fast", "NaN"} {
		t.Setenv(ScaleEnv, bad)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s=%q: no panic", ScaleEnv, bad)
				}
			}()
			Scale(time.Second)
		}()
	}
}

// Ports handed out are free, below the ephemeral range, consecutive, and
// never handed out twice.
func TestFreePorts(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		base := FreePorts(t, 3)
		for p := base; p < base+3; p++ {
			if p < portsLo || p >= portsHi {
				t.Fatalf("port %d outside %d–%d", p, portsLo, portsHi)
			}
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d: %v", p, err)
			}
			l.Close()
		}
	}
}
