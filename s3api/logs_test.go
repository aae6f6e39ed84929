package s3api_test

import (
	"strings"
	"testing"
)

func dumpFailures(t *testing.T, n *network) {
	for _, l := range strings.Split(n.logs.String(), "\n") {
		if strings.Contains(l, "failed") || strings.Contains(l, "level=WARN") {
			t.Log(l)
		}
	}
}
