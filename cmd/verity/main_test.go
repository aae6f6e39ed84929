package main

import (
	"os"
	"testing"
)

// runMainEnv makes the test binary run as the verity command: tests that
// need real separate processes (scaleout_test.go) exec it with this set to
// "1" and verity's arguments, so they never depend on a stale bin/verity.
const runMainEnv = "VERITY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
