package main

import (
	"context"
	"fmt"
	"io"

	"github.com/verity-cdn/verity/internal/paysim"
)

// runSim dispatches `verity sim <model>`; today the only model is payments.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "payments" {
		fmt.Fprintln(stderr, "usage: verity sim payments [flags]   (verity sim payments -h lists them)")
		if len(args) > 0 && isHelp(args[0]) {
			return nil
		}
		return fmt.Errorf("sim: want a model name (payments): %w", errUsage)
	}
	return paysim.RunCommand(ctx, args[1:], stdout, stderr)
}
