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
	return n.write(nodeproto.Message{Type: nodeproto.MsgRepairSources, Sources: &nodeproto.RepairSources{ID: r.ID, CID: r.CID, Sources: out, Grant: n.c.grant(n.node, r.CID, nodeproto.GrantBlock)}})
}
