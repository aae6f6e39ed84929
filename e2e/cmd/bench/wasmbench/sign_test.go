package main

import (
	"testing"
	"time"
)

func TestSignPerBlock(t *testing.T) {
	us, err := SignPerBlock(100 * time.Millisecond)
	if err != nil || us <= 0 {
		t.Fatalf("SignPerBlock = %v µs, %v", us, err)
	}
	t.Logf("%.1f µs per block", us)
}
