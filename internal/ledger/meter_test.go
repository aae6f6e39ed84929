package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/testutil"
)

// flaky is a ledger whose ApplyCharge fails while down is set.
type flaky struct {
	l    *ledger.Ledger
	down atomic.Bool
}

func (f *flaky) ApplyCharge(ctx context.Context, c ledger.Charge) (ledger.ChargeResult, error) {
	if f.down.Load() {
		return ledger.ChargeResult{}, errors.New("ledger unreachable")
	}
	return f.l.ApplyCharge(ctx, c)
}

// TestMeterRetriesOnce: a batch that failed is retried with its sequence
// number before newer bytes of its account; a retry of a batch that did
// land applies nothing; Close charges the rest and stops the goroutine.
func TestMeterRetriesOnce(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	if _, err := e.l.CreateAccount(ctxT(t), "acme", 1); err != nil {
		t.Fatal(err)
	}
	charged := func() uint64 {
		a, err := e.l.Account(ctxT(t), "acme")
		if err != nil {
			t.Fatal(err)
		}
		return a.Charged
	}
	before := runtime.NumGoroutine()
	f := &flaky{l: e.l}
	m := ledger.NewMeter(ledger.MeterConfig{Applier: f, Name: "gw1", Interval: time.Hour, Logger: quiet()})
	m.Add("acme", "blog", 100)
	m.Add("acme", "shop", 20)
	m.Add("", "blog", 999) // no account: not metered

	// The ledger fails: the batch is kept.
	f.down.Store(true)
	if err := m.Flush(ctxT(t)); err == nil {
		t.Fatal("flush with the ledger down succeeded")
	}
	m.Add("acme", "blog", 5) // waits behind the failed batch
	f.down.Store(false)
	if n := m.Unbilled("acme"); n != 125 {
		t.Fatalf("unbilled %d, want 125 (the failed batch included)", n)
	}
	if err := m.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := charged(); got != 120 {
		t.Fatalf("charged %d after the retry, want 120", got)
	}
	// Pretend the retried batch's answer was lost: sending it again
	// applies nothing.
	ledger.MeterRetry(m, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: ledger.MeterSeq(m), Sites: map[string]uint64{"blog": 100, "shop": 20}})
	if err := m.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := charged(); got != 120 {
		t.Fatalf("charged %d after a replay, want 120", got)
	}
	// Close charges the 5 bytes still pending, once, and stops.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := charged(); got != 125 {
		t.Fatalf("charged %d after close, want 125", got)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the meter's goroutine to end after close", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}
