package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

// Bad --site values are refused before anything starts.
func TestRunGatewayBadSites(t *testing.T) {
	for _, arg := range []string{
		"demo=garbage",
		"demo=",
		"Demo=bafkqaaa",
		"de mo=bafkqaaa",
		"demo",
	} {
		err := runGateway(context.Background(), []string{"--listen", "127.0.0.1:0", "--node", "http://127.0.0.1:1", "--site", arg}, io.Discard, io.Discard)
		if err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("--site %q: err = %v, want a refusal", arg, err)
		}
	}
}
