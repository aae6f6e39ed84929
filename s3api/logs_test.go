package s3api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

func dumpFailures(t *testing.T, n *network) {
	for _, l := range strings.Split(n.logs.String(), "\n") {
		if strings.Contains(l, "failed") || strings.Contains(l, "level=WARN") {
			t.Log(l)
		}
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), testutil.Scale(d))
}
