// Package testutil is what the tests of every Verity package share:
// waiting for a condition instead of sleeping for a guessed time.
//
//	testutil.Eventually(t, 10*time.Second, "the node to join", func() bool {
//		return n.State().Joined
//	})
//	testutil.EventuallyErr(t, 10*time.Second, "the site to be published", func() error {
//		if v := site.Version(); v != 2 {
//			return fmt.Errorf("version %d", v)
//		}
//		return nil
//	})
//
// A condition is checked at once, then again after a short backoff
// (1 ms, doubling up to 50 ms), so a wait ends as soon as it can. The
// timeout is an upper bound, not an expectation: make it generous. Every
// timeout is multiplied by the environment variable
// VERITY_TEST_TIMEOUT_SCALE (a positive number, default 1), for slow or
// loaded machines and the race detector.
//
// The package imports nothing of Verity's, so the tests of every package
// (internal ones included) can use it; it compiles for js/wasm too.
package testutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// ScaleEnv is the environment variable every timeout is multiplied by.
const ScaleEnv = "VERITY_TEST_TIMEOUT_SCALE"

const (
	firstBackoff = time.Millisecond
	maxBackoff   = 50 * time.Millisecond
)

// Scale returns d multiplied by VERITY_TEST_TIMEOUT_SCALE. It panics on a
// value that is not a positive number: a misspelt scale must not pass
// silently for the default.
func Scale(d time.Duration) time.Duration {
	s := os.Getenv(ScaleEnv)
	if s == "" {
		return d
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) {
		panic(fmt.Sprintf("testutil: %s=%q: want a positive number", ScaleEnv, s))
	}
	return time.Duration(float64(d) * f)
}

// Eventually waits until cond returns true, for at most timeout (scaled),
// and fails the test with what it waited for when it does not. Call it
// from the test's goroutine (it calls t.Fatalf).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyErr(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// EventuallyErr waits until cond returns nil, for at most timeout
// (scaled), and fails the test with what it waited for and cond's last
// error (the state it saw) when it does not. Call it from the test's
// goroutine (it calls t.Fatalf).
func EventuallyErr(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Wait is EventuallyErr without a test: it returns nil once cond does,
// or, after timeout (scaled), an error that carries cond's last error.
// It is for helpers that cannot fail the test themselves, such as those
// that run on another goroutine.
func Wait(timeout time.Duration, cond func() error) error {
	limit := Scale(timeout)
	deadline := time.Now().Add(limit)
	backoff := firstBackoff
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			if err == errNotYet {
				return fmt.Errorf("timed out after %s (%s scales every wait)", limit, ScaleEnv)
			}
			return fmt.Errorf("timed out after %s (%s scales every wait); last: %w", limit, ScaleEnv, err)
		}
		time.Sleep(min(backoff, time.Until(deadline)))
		backoff = min(2*backoff, maxBackoff)
	}
}

// errNotYet is Eventually's stand-in for a condition that gives no reason.
var errNotYet = errors.New("not yet")
