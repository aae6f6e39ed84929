package coordinator_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Coordinators, node clients, connections, buses and their embedded NATS
// servers are all stopped by the tests that start them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
