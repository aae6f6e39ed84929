package coordinator

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Rebalancing. New roots go to the nodes with the most storage left
// (place), but what is placed stays where it is: a node that joins a busy
// network would hold nothing until new deploys came. So, slowly, existing
// holdings move to the nodes that hold the fewest roots: while the live
// node holding the most roots holds at least two more than the one
// holding the fewest, one of its pinned roots (one whose replicas are all
// pinned) is ordered on the emptier node, as an extra holder that
// replaces it; once the new copy passes its audit the old holding is
// dropped and its node told to unpin (auditDone), unless the other live
// holders would then be short of the replicas (one failed or was lost
// during the move): then it stays. One move is in flight at
// a time, one started per Config.RebalanceInterval, so the network's
// traffic for moves stays small and a root is never below its replicas.

// every runs run about every iv (jittered by ±25%, so that a cluster's
// coordinators do not run in step) until Close, logging its failures as
// what failed.
func (c *Coordinator) every(iv time.Duration, what string, run func(context.Context) error) {
	defer c.wg.Done()
	for {
		t := time.NewTimer(iv*3/4 + rand.N(iv/2+1))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := run(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn(what+" failed", "err", err)
		}
	}
}

// Rebalance starts at most one move of a holding from the live node
// holding the most roots to the one holding the fewest, when they differ
// by two or more and no move is in flight. It returns the root it moved
// ("" for none).
func (c *Coordinator) Rebalance(ctx context.Context) (string, error) {
	live, err := c.LiveNodes(ctx)
	if err != nil || len(live) < 2 {
		return "", err
	}
	isLive := make(map[string]bool, len(live))
	held := make(map[string]int, len(live))
	for _, s := range live {
		isLive[s.Node()] = true
		held[s.Node()] = 0
	}
	placements := c.Placements()
	for _, p := range placements {
		for id, h := range p.Nodes {
			if h.Replaces != "" && isLive[id] && (h.State == HolderPending || h.State == HolderAuditing) {
				return "", nil // a move in flight
			}
			if isLive[id] && h.State != HolderFailed {
				held[id]++
			}
		}
	}
	// The emptiest node that can take more, and the fullest.
	targets := slices.DeleteFunc(slices.Clone(live), func(s NodeState) bool {
		return s.Status.Capacity > 0 && s.Status.Available() <= 0
	})
	if len(targets) == 0 {
		return "", nil
	}
	to := slices.MinFunc(targets, func(a, b NodeState) int {
		return cmp.Or(cmp.Compare(held[a.Node()], held[b.Node()]), cmp.Compare(b.Status.Available(), a.Status.Available()), strings.Compare(a.Node(), b.Node()))
	}).Node()
	from := slices.MaxFunc(live, func(a, b NodeState) int {
		return cmp.Or(cmp.Compare(held[a.Node()], held[b.Node()]), strings.Compare(b.Node(), a.Node()))
	}).Node()
	if held[from]-held[to] < 2 {
		return "", nil
	}
	for _, p := range placements {
		if p.Nodes[from].State != HolderPinned {
			continue
		}
		if _, there := p.Nodes[to]; there {
			continue
		}
		pinned := 0
		for id, h := range p.Nodes {
			if isLive[id] && h.State == HolderPinned {
				pinned++
			}
		}
		if pinned < p.Replicas {
			continue // repair first: re-replication's work
		}
		moved, err := c.startMove(ctx, p.Root, from, to)
		if err != nil || moved {
			if moved {
				c.log.Info("rebalancing: moving a holding", "root", p.Root, "from", from, "to", to, "held", held[from], "target held", held[to])
				return p.Root, nil
			}
			return "", err
		}
	}
	return "", nil
}

// startMove adds to as a pending holder of root replacing from, if from
// still holds it and to does not.
func (c *Coordinator) startMove(ctx context.Context, root, from, to string) (bool, error) {
	now := c.cfg.Now().UTC()
	out, err := c.updatePlacement(ctx, root, func(p *Placement) bool {
		if _, there := p.Nodes[to]; there || p.Nodes[from].State != HolderPinned {
			return false
		}
		p.Nodes[to] = Holder{State: HolderPending, Since: now, Replaces: from}
		return true
	})
	return out.Root != "", err
}
