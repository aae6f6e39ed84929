package main

import (
	"context"
	"errors"
	"io"
)

// TODO: implemented by the devnet owner.
func runDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("devnet: not implemented yet")
}
