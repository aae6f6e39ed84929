package ledger_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Buses, their embedded NATS servers and subscriptions are all stopped by
// the tests that start them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
