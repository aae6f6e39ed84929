package events_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Bus and Subscription a test opens is closed, embedded servers
// included: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
