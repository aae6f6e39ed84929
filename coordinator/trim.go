package coordinator

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// Surplus copies. A holder that was lost stays listed in its placements
// (if it comes back with the content it counts again), and the roots it
// held are placed again on other nodes meanwhile; a rebalancing move
// keeps its source when the root would otherwise be short. Either way a
// root can end up with more live copies than its replicas, and each
// counts against its node's storage: TrimSurplus, run by the repair pass,
// drops the extra holders, which are told to unpin (storePlacement).

// TrimSurplus drops, from each placement with more live holders that
// passed their audit than its replicas, the holders beyond them, and
// returns how many holders it dropped. A placement is trimmed only while
// nothing is under way on it (no holder pending or auditing, so no pin,
// repair or rebalancing move in flight), and only holders that are live
// and pinned are kept: its replicas, all of them audited copies on live
// nodes. Kept first are the holders on nodes that hold the placement's
// Near root (a bucket's content stays together), then those audited
// since their node last joined (a copy made while a holder was away is
// kept over the copy that came back with it, unchecked since), then the
// most recently audited; ties by node id. Lost and failed holders are
// left as they are.
func (c *Coordinator) TrimSurplus(ctx context.Context) (int, error) {
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return 0, err
	}
	joined := make(map[string]time.Time, len(live)) // the live nodes
	for _, s := range live {
		joined[s.Node()] = s.JoinedAt
	}
	dropped := 0
	for _, p := range c.Placements() {
		if len(surplus(p, joined, nil)) == 0 {
			continue
		}
		var near *Placement
		if np, ok := c.Placement(p.Near); p.Near != "" && ok {
			near = &np
		}
		var gone []string
		out, err := c.updatePlacement(ctx, p.Root, func(p *Placement) bool {
			gone = surplus(*p, joined, near)
			for _, id := range gone {
				delete(p.Nodes, id)
			}
			return len(gone) > 0
		})
		if err != nil {
			return dropped, err
		}
		if out.Root == "" || len(gone) == 0 {
			continue
		}
		dropped += len(gone)
		c.log.Info("surplus copies dropped", "root", p.Root, "replicas", out.Replicas, "nodes", gone)
	}
	return dropped, nil
}

// surplus returns the holders of p to drop (TrimSurplus), none while a
// live node's holding is pending or auditing. joined holds the live
// nodes and when each joined; near, when set, is the placement of p.Near.
func surplus(p Placement, joined map[string]time.Time, near *Placement) []string {
	var pinned []string
	for id, h := range p.Nodes {
		_, live := joined[id]
		switch {
		case !live:
		case h.State == HolderPending || h.State == HolderAuditing:
			return nil
		case h.State == HolderPinned:
			pinned = append(pinned, id)
		}
	}
	if p.Replicas <= 0 || len(pinned) <= p.Replicas {
		return nil
	}
	// A holding audited since its node last joined before one it came
	// back with, unchecked since.
	checked := func(id string) int {
		if p.Nodes[id].Since.Before(joined[id]) {
			return 0
		}
		return 1
	}
	slices.SortFunc(pinned, func(a, b string) int {
		if near != nil {
			if c := cmp.Compare(nearRank(*near, b), nearRank(*near, a)); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(checked(b), checked(a)), p.Nodes[b].Since.Compare(p.Nodes[a].Since), strings.Compare(a, b))
	})
	return pinned[p.Replicas:]
}
