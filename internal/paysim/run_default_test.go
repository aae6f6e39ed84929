package paysim_test

import (
	"context"
	"os"
	"testing"

	"github.com/verity-cdn/verity/internal/paysim"
)

// TestDefaultRun runs the defaults, prints the table (go test -v -run
// DefaultRun ./internal/paysim) and checks what the design promises under
// them; skipped with -short.
func TestDefaultRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds")
	}
	c := paysim.Config{}
	if testing.Verbose() {
		c.Out = os.Stdout
		c.VerifyPerCore = paysim.Calibrate(300e6)
	}
	r := paysim.Run(context.Background(), c)
	byName := map[string]paysim.PolicyResult{}
	for _, p := range r.Policies {
		byName[p.Policy] = p
		// Every policy: nodes are credited what they served, never more;
		// what attackers take is within the voucher bound.
		if p.OvercreditedAccounts != 0 || p.Credited > p.Served {
			t.Errorf("%s: %d accounts debited beyond what they were served; credited %d of %d served",
				p.Policy, p.OvercreditedAccounts, p.Credited, p.Served)
		}
		if p.Stolen == 0 || p.StolenMax > p.StolenBound {
			t.Errorf("%s: an attacker took %d bytes, bound %d (all: %d)", p.Policy, p.StolenMax, p.StolenBound, p.Stolen)
		}
	}
	def, ok := byName["25% bal/n or 5 min"]
	if !ok {
		t.Fatal("default policy not run")
	}
	// The default policy keeps the worst account within 10% of its
	// funding below zero (4.6% with seed 1), and attackers with their own
	// nodes take a bounded, small share of what the network served.
	if def.WorstNegativePct < -10 {
		t.Errorf("default policy: worst balance %.1f%% of funding; bound -10%%", def.WorstNegativePct)
	}
	if share := float64(def.Stolen) / float64(def.Served); share > 0.001 {
		t.Errorf("attackers took %.4f%% of the bytes served; bound 0.1%%", 100*share)
	}
	// Aggregation still holds with the per-node cap: far fewer
	// settlements than receipts.
	if def.Settlements*100 > def.Receipts {
		t.Errorf("default policy: %d settlements for %d receipts", def.Settlements, def.Receipts)
	}
}
