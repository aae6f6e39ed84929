package payment_test

import (
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

func TestSettlePolicy(t *testing.T) {
	p := payment.SettlePolicy{Fraction: 0.5, MaxInterval: time.Minute}
	const gib = 1 << 30
	cases := []struct {
		name string
		s    payment.SettleState
		want bool
	}{
		{"nothing uncommitted", payment.SettleState{Balance: gib, Nodes: 1, SinceLast: time.Hour}, false},
		{"below share", payment.SettleState{Uncommitted: gib / 2, Balance: gib, Nodes: 1}, false},
		{"above share", payment.SettleState{Uncommitted: gib/2 + 1, Balance: gib, Nodes: 1}, true},
		{"share divided among nodes", payment.SettleState{Uncommitted: gib/8 + 1, Balance: gib, Nodes: 4}, true},
		{"zero nodes counts as one", payment.SettleState{Uncommitted: gib / 4, Balance: gib, Nodes: 0}, false},
		{"interval", payment.SettleState{Uncommitted: 1, Balance: gib, Nodes: 1, SinceLast: time.Minute}, true},
		{"empty account", payment.SettleState{Uncommitted: 1, Balance: 0, Nodes: 1}, true},
		{"negative account", payment.SettleState{Uncommitted: 1, Balance: -5, Nodes: 1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := p.ShouldSettle(c.s); got != c.want {
				t.Fatalf("ShouldSettle(%+v) = %v", c.s, got)
			}
		})
	}
	if got := (payment.SettlePolicy{MaxBytes: 10}).Threshold(gib, 1); got != 10 {
		t.Fatalf("MaxBytes threshold %d", got)
	}
	if got := (payment.SettlePolicy{}).Threshold(gib, 1); got != gib/4 {
		t.Fatalf("default threshold %d", got)
	}
}
