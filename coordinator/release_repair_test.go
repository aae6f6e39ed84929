package coordinator

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
)

// A repair (a pass, or node.joined/node.lost) working from a snapshot
// read before Release emptied the placement, landing between Release's
// two steps: the emptied placement is left as it is, and Release's
// delete at the revision it wrote goes through. Before, the repair wrote
// the placement back with the snapshot's replicas and no label: the
// delete failed, and a placement no collector looks at stayed.
func TestRepairBetweenReleaseSteps(t *testing.T) {
	c := newLocalCoordinator(t, Config{})
	ctx := t.Context()
	const root = "bafyreleased"
	if _, err := c.Place(ctx, events.SiteDeployed{Site: "pv", Root: root, Replicas: 2, CAR: "http://127.0.0.1:1/x.car"}); err == nil {
		t.Fatal("placed with no live node")
	}
	snap, ok := c.Placement(root)
	if !ok || snap.Replicas != 2 {
		t.Fatalf("placement %+v %v", snap, ok)
	}
	// Release's first step: the label goes, and with it the replicas.
	_, rev, err := c.updatePlacementRev(ctx, root, func(p *Placement) bool {
		p.Sites, p.Replicas, p.Nodes = nil, 0, map[string]Holder{}
		return true
	})
	if err != nil || rev == 0 {
		t.Fatalf("emptying: rev %d %v", rev, err)
	}
	if _, err := c.repair(ctx, snap, true); err != nil {
		t.Logf("repair: %v", err)
	}
	// Release's second step.
	if err := c.pkv.Delete(ctx, root, jetstream.LastRevision(rev)); err != nil {
		e, _ := c.pkv.Get(ctx, root)
		var v string
		if e != nil {
			v = string(e.Value())
		}
		t.Fatalf("the release's delete: %v; placement now %s", err, v)
	}
}
