//go:build !js

package wasmclient_test

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// TestMain fails the package when goroutines outlive the tests: every
// source, timer and report goroutine must end once bodies and clients are
// closed.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(before, 5*time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitGoroutines(n int, d time.Duration) string {
	err := testutil.Wait(d, func() error {
		http.DefaultClient.CloseIdleConnections()
		if m := runtime.NumGoroutine(); m > n {
			return fmt.Errorf("%d goroutines, %d before", m, n)
		}
		return nil
	})
	if err == nil {
		return ""
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := []string{err.Error()}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "testing.(*M).Run") && !strings.Contains(g, "waitGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
