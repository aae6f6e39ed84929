package control

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
)

// apiListNodes answers GET /v1/nodes (admin): every node of the registry
// with its state, last report and holdings; live nodes first.
func (c *Control) apiListNodes(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	states, err := c.coord.NodeStates(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	type counts struct{ pinned, auditing, pending int }
	held := map[string]*counts{}
	for _, p := range c.coord.Placements() {
		for id, h := range p.Nodes {
			n := held[id]
			if n == nil {
				n = &counts{}
				held[id] = n
			}
			switch h.State {
			case coordinator.HolderPinned:
				n.pinned++
			case coordinator.HolderAuditing:
				n.auditing++
			case coordinator.HolderPending:
				n.pending++
			}
		}
	}
	out := api.NodeList{Nodes: make([]api.NodeInfo, 0, len(states))}
	for _, s := range states {
		ni := api.NodeInfo{
			ID: s.Node(), State: s.State, Reason: s.Reason, Operator: s.Operator,
			Region: s.Status.Region, Version: s.Status.Version,
			HTTP: s.Record.Record.HTTP, WebTransport: s.Record.Record.WebTransport,
			Coordinator: s.Coordinator, JoinedAt: s.JoinedAt, LastSeen: s.LastSeen, LostAt: s.LostAt,
			Blocks: s.Status.Blocks, Capacity: s.Status.Capacity, FreeDisk: s.Status.FreeDisk, Load: s.Status.Load,
		}
		if n := held[ni.ID]; n != nil {
			ni.Holdings, ni.Auditing, ni.Pending = n.pinned, n.auditing, n.pending
		}
		out.Nodes = append(out.Nodes, ni)
	}
	slices.SortFunc(out.Nodes, func(a, b api.NodeInfo) int {
		if a.State != b.State {
			if a.State == coordinator.StateLive {
				return -1
			}
			if b.State == coordinator.StateLive {
				return 1
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
	writeJSON(w, http.StatusOK, out)
}
