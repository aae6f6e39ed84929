package main

import (
	"context"
	"errors"
	"io"
)

// TODO: implemented by the gateway owner.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("gateway: not implemented yet")
}
