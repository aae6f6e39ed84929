package paysim_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/paysim"
)

func small() paysim.Config {
	return paysim.Config{Nodes: 50, Accounts: 100, AccountsPerNode: 5, Duration: 2 * time.Minute, Seed: 3, Attackers: -1}
}

func TestDeterministic(t *testing.T) {
	a := paysim.Run(context.Background(), small())
	b := paysim.Run(context.Background(), small())
	if !reflect.DeepEqual(a.Policies, b.Policies) {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a.Policies, b.Policies)
	}
	c := small()
	c.Seed = 4
	if reflect.DeepEqual(a.Policies, paysim.Run(context.Background(), c).Policies) {
		t.Fatal("seed ignored")
	}
}

func TestPolicies(t *testing.T) {
	r := paysim.Run(context.Background(), small())
	byName := map[string]paysim.PolicyResult{}
	for _, p := range r.Policies {
		byName[p.Policy] = p
	}
	per, def, loose := byName["per receipt"], byName["25% bal/n or 5 min"], byName["25% bal (ignores n)"]
	if per.Settlements != per.Receipts {
		t.Fatalf("per receipt: %d settlements for %d receipts", per.Settlements, per.Receipts)
	}
	if def.Settlements*100 > def.Receipts {
		t.Fatalf("aggregation: %d settlements for %d receipts", def.Settlements, def.Receipts)
	}
	if loose.WorstNegative > def.WorstNegative {
		t.Fatalf("ignoring the node count did not raise the exposure: %d vs %d", loose.WorstNegative, def.WorstNegative)
	}
	if def.AccountsFrozen == 0 {
		t.Fatal("no account ran dry: the model does not exercise freezing")
	}
	// 10 Gbit/s at 256 KiB.
	if r.ReceiptsPerNode < 4700 || r.ReceiptsPerNode > 4800 {
		t.Fatalf("receipts per node %f", r.ReceiptsPerNode)
	}
}

func TestRunCommand(t *testing.T) {
	var out, errb bytes.Buffer
	err := paysim.RunCommand(context.Background(), []string{"-nodes=20", "-accounts=40", "-accounts-per-node=4", "-duration=30s", "-calibrate=false"}, &out, &errb)
	if err != nil {
		t.Fatal(err, errb.String())
	}
	for _, want := range []string{"per receipt", "settlements/s", "claim:"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := paysim.RunCommand(context.Background(), []string{"-bogus"}, &out, &errb); err == nil {
		t.Fatal("bad flag accepted")
	}
}
