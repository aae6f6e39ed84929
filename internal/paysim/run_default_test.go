package paysim_test

import (
	"context"
	"os"
	"testing"

	"github.com/verity-cdn/verity/internal/paysim"
)

// TestDefaultRun runs the defaults and prints the table (go test -v -run
// DefaultRun ./internal/paysim); skipped with -short.
func TestDefaultRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds")
	}
	c := paysim.Config{}
	if testing.Verbose() {
		c.Out = os.Stdout
		c.VerifyPerCore = paysim.Calibrate(300e6)
	}
	paysim.Run(context.Background(), c)
}
