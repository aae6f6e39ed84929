package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
)

// TestMeterRetriesOnce: a batch that failed is retried with its sequence
// number before newer bytes of its account; a retry of a batch that did
// land applies nothing; close charges the rest and stops the goroutine.
func TestMeterRetriesOnce(t *testing.T) {
	bus := openBus(t, "gw-meter")
	newLedger := func() *ledger.Ledger {
		l, err := ledger.New(t.Context(), ledger.Config{Bus: bus, Keys: payment.KeySet{}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := newLedger()
	if _, err := l.CreateAccount(t.Context(), "acme", 1); err != nil {
		t.Fatal(err)
	}
	charged := func() uint64 {
		a, err := newLedger().Account(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		return a.Charged
	}
	before := runtime.NumGoroutine()
	// The account as the coordinator's mirror has it: balance 0.
	mirror := accountsFunc(func(name string) (nodeproto.AccountState, bool) {
		return nodeproto.AccountState{Name: name}, name == "acme"
	})
	m := newMeter(l, mirror, "gw1", time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	m.add("acme", "blog", 100)
	m.add("acme", "shop", 20)
	m.add("", "blog", 999) // no account: not metered

	// The ledger fails: the batch is kept.
	l.Close()
	if err := m.flush(t.Context()); err == nil {
		t.Fatal("flush with a closed ledger succeeded")
	}
	m.add("acme", "blog", 5) // waits behind the failed batch
	m.l = newLedger()
	if st := m.state("acme"); st.balance != -125 {
		t.Fatalf("balance seen %d, want -125 (uncharged bytes included)", st.balance)
	}
	if err := m.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := charged(); got != 120 {
		t.Fatalf("charged %d after the retry, want 120", got)
	}
	// Pretend the retried batch's answer was lost: sending it again
	// applies nothing.
	m.mu.Lock()
	m.failed["acme"] = ledger.Charge{Account: "acme", Gateway: "gw1", Seq: m.seq, Sites: map[string]uint64{"blog": 100, "shop": 20}}
	m.mu.Unlock()
	if err := m.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := charged(); got != 120 {
		t.Fatalf("charged %d after a replay, want 120", got)
	}
	// close charges the 5 bytes still pending, once, and stops.
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	if err := m.close(); err != nil {
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

// accountsFunc adapts a function to an AccountSource.
type accountsFunc func(name string) (nodeproto.AccountState, bool)

func (f accountsFunc) Account(name string) (nodeproto.AccountState, bool) { return f(name) }
