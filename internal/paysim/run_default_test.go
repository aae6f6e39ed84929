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
	// With vouchers holding their budget on the account, the default
	// policy keeps every account within 1% of its funding below zero (at
	// 0 with seed 1; -4.6% without holds), and attackers with their own
	// nodes take a bounded, small share of what the network served.
	if def.WorstNegativePct <= -1 {
		t.Errorf("default policy: worst balance %.2f%% of funding; bound -1%%", def.WorstNegativePct)
	}
	if c := r.Config; c.Sessions < 1_000_000 {
		t.Errorf("%d concurrent sessions simulated; want the default 1,000,000", c.Sessions)
	}
	if def.Vouchers == 0 || def.Refused*100 > def.Served {
		t.Errorf("default policy: %d vouchers; %d bytes not covered of %d served", def.Vouchers, def.Refused, def.Served)
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
