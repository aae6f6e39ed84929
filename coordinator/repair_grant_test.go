package coordinator_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// A repair's grant lets a node take one raw block, any CID it names, from
// nodes that require payment. So the coordinator gives none to a node with
// no other holder to fetch from, and no more than RepairGrantBurst to one
// operator's nodes before its bucket refills: a registered node asking a
// repair for each block of a DAG it was never given does not read it
// block by block.
func TestRepairGrantsBounded(t *testing.T) {
	_, reqKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := payment.NewKeySet(reqKey.Public().(ed25519.PublicKey))
	e := newEnv(t, func(c *coordinator.Config) { c.RequestKey = reqKey })
	ctx := ctxT(t)
	pc := func() *pinCounter {
		return &pinCounter{fails: map[string]int{}, orders: map[string]int{}, srcs: map[string][]string{}}
	}
	ka, a := joinPinner(t, e, 4211, pc())

	// Nothing placed on a: no holder to fetch from, and no grant.
	srcs, grant, err := a.RepairSources(ctx, "bafyelsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 0 || grant != "" {
		t.Fatalf("a node holding nothing asked a repair: sources %q, grant %q; want neither", srcs, grant)
	}

	_, b := joinPinner(t, e, 4213, pc())
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: "bafyshared", Replicas: 2, CAR: "http://127.0.0.1:1/shared.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the root pinned on both nodes", func() bool {
		p, _ := e.coord.Placement("bafyshared")
		return len(p.Holders(coordinator.HolderPinned)) == 2
	})

	granted := 0
	for i := range coordinator.RepairGrantBurst + 16 {
		c := "bafyblock" + strconv.Itoa(i)
		srcs, grant, err := a.RepairSources(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(srcs) != 1 {
			t.Fatalf("repair %d: sources %q, want the other holder", i, srcs)
		}
		if grant == "" {
			continue
		}
		granted++
		if g, err := nodeproto.VerifyGrant(grant, time.Now(), keys); err != nil || g.Node != ka.id || g.CID != c || g.Scope != nodeproto.GrantBlock {
			t.Fatalf("repair %d: grant %+v, %v", i, g, err)
		}
	}
	// The bucket refills one a minute: one more at most if a minute
	// passed meanwhile.
	if granted < coordinator.RepairGrantBurst || granted > coordinator.RepairGrantBurst+1 {
		t.Fatalf("%d repair grants for %d requests, want %d", granted, coordinator.RepairGrantBurst+16, coordinator.RepairGrantBurst)
	}
	// b, of the same operator, shares the bucket.
	if _, grant, err := b.RepairSources(ctx, "bafyblockb"); err != nil || grant != "" {
		t.Fatalf("another node of the operator past its grants: grant %q, %v", grant, err)
	}
}
