package main

import (
	"context"
	"errors"
	"io"
)

// TODO: implemented by the node owner.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("node: not implemented yet")
}
