package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRunSim(t *testing.T) {
	if err := runSim(context.Background(), nil, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("no model: %v", err)
	}
	if err := runSim(context.Background(), []string{"weather"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("unknown model: %v", err)
	}
	var out strings.Builder
	err := runSim(context.Background(), []string{"payments", "--nodes", "10", "--accounts", "20", "--accounts-per-node", "4", "--duration", "10s", "--calibrate=false"}, &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "receipts/s") {
		t.Fatalf("sim payments: %v\n%s", err, out.String())
	}
}
