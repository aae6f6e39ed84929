package coordinator

import (
	"slices"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// repair answers a node's request for sources of a corrupt block: the
// HTTP URLs of the other live nodes that passed their audit of a root
// placed on the asking node (the block is in one of them), at most
// nodeproto.MaxRepairSources, those not ranked down first.
func (n *nodeConn) repair(r *nodeproto.Repair) error {
	c := n.c
	live, err := c.LiveNodes(c.ctx)
	if err != nil {
		return nil
	}
	httpOf := make(map[string]string, len(live))
	for _, s := range live {
		httpOf[s.Node()] = s.Record.Record.HTTP
	}
	var cands []string
	for _, p := range c.Placements() {
		if _, ok := p.Nodes[n.node]; !ok {
			continue
		}
		for _, id := range p.Holders(HolderPinned) {
			if u := httpOf[id]; id != n.node && u != "" && !slices.Contains(cands, u) {
				cands = append(cands, u)
			}
		}
	}
	var good, penalized []string
	for _, s := range live {
		u := s.Record.Record.HTTP
		if !slices.Contains(cands, u) {
			continue
		}
		if c.cfg.Router.Penalized(s.Node()) {
			penalized = append(penalized, u)
		} else {
			good = append(good, u)
		}
	}
	out := append(good, penalized...)
	if len(out) > nodeproto.MaxRepairSources {
		out = out[:nodeproto.MaxRepairSources]
	}
	n.log.Info("node repairs a corrupt block", "cid", clip(r.CID), "sources", len(out))
	// The grant is for any CID the node names: none without a holder to
	// fetch from, and a bounded number per operator.
	var grant string
	if len(out) > 0 && c.cfg.RequestKey != nil {
		if c.repairGrants.allow(n.operator, c.cfg.Now(), repairGrantRate, repairGrantBurst) {
			grant = c.grant(n.node, r.CID, nodeproto.GrantBlock)
		} else {
			n.log.Warn("repair grant refused: the operator's nodes asked too many", "operator", n.operator, "cid", clip(r.CID))
		}
	}
	return n.write(nodeproto.Message{Type: nodeproto.MsgRepairSources, Sources: &nodeproto.RepairSources{ID: r.ID, CID: r.CID, Sources: out, Grant: grant}})
}

// repairGrantRate and repairGrantBurst bound the repair grants the nodes
// of one operator get (a token bucket by operator, so neither reconnecting
// nor another node id refills it). A grant lets a node read one raw block
// of any CID from nodes that require payment, and the coordinator cannot
// tell whether the block belongs to a root placed on it, so without a
// bound a node could read any DAG a block at a time. Blocks found corrupt
// are rare; a node queues at most 64 repairs at once.
const (
	repairGrantRate  = 1.0 / 60 // grants per second
	repairGrantBurst = 64
)
