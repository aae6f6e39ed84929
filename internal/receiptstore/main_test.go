package receiptstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Store a test opens is closed: its goroutine must be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
