package control

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/payment"
)

// apiListNodes answers GET /v1/nodes: every node of the registry with
// its state, last report and holdings, live nodes first; to the admin
// all of them, to an operator its own.
func (c *Control) apiListNodes(w http.ResponseWriter, r *http.Request) {
	op, err := c.operatorOf(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	nodes, err := c.nodeInfos(r.Context(), op)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NodeList{Nodes: nodes})
}

// apiGetNode answers GET /v1/nodes/{id}: one node as GET /v1/nodes lists
// it, to the admin or the node's operator.
func (c *Control) apiGetNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := payment.ParseNodeID(id); err != nil {
		c.fail(w, r, badRequest("invalid node id %q", clip(id)))
		return
	}
	if err := c.authorizeNode(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	nodes, err := c.nodeInfos(r.Context(), "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, n := range nodes {
		if n.ID == id {
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	c.fail(w, r, fmt.Errorf("%w: node %s", ErrNotFound, id))
}

// routed is a Coordinator whose router knows nodes' autonomous systems
// (*coordinator.Coordinator).
type routed interface{ Router() *coordinator.Router }

var _ routed = (*coordinator.Coordinator)(nil)

// nodeInfos lists the registry's nodes (operator's only, unless "").
func (c *Control) nodeInfos(ctx context.Context, operator string) ([]api.NodeInfo, error) {
	states, err := c.coord.NodeStates(ctx)
	if err != nil {
		return nil, err
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
		if operator != "" && s.Operator != operator {
			continue
		}
		ni := api.NodeInfo{
			ID: s.Node(), State: s.State, Reason: s.Reason, Operator: s.Operator,
			Region: s.Status.Region, Version: s.Status.Version,
			HTTP: s.Record.Record.HTTP, WebTransport: s.Record.Record.WebTransport,
			Coordinator: s.Coordinator, JoinedAt: s.JoinedAt, LastSeen: s.LastSeen, LostAt: s.LostAt,
			Blocks: s.Status.Blocks, Capacity: s.Status.Capacity, FreeDisk: s.Status.FreeDisk, Load: s.Status.Load,
			Stored: s.Status.Stored,
		}
		if rt, ok := c.coord.(routed); ok && rt.Router() != nil {
			ni.ASN = rt.Router().Client(s.Candidate().Addr).ASN
		}
		for _, ch := range s.Record.Record.CertHashes {
			if ch.NotAfter.After(ni.CertExpires) {
				ni.CertExpires = ch.NotAfter
			}
		}
		if p := s.Status.Receipts; p != nil {
			ni.ClaimedUnsettled = &api.Unsettled{Sessions: p.Sessions, Bytes: p.Bytes, ByAccount: p.ByAccount}
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
	return out.Nodes, nil
}

// apiListPlacements answers GET /v1/placements (admin): every placed
// root with its holders, under-replicated ones (fewer live pinned
// holders than replicas wanted) first.
func (c *Control) apiListPlacements(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	live, err := c.coord.LiveNodes(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	isLive := make(map[string]bool, len(live))
	for _, s := range live {
		isLive[s.Node()] = true
	}
	out := api.PlacementList{Placements: []api.PlacementInfo{}}
	for _, p := range c.coord.Placements() {
		pi := api.PlacementInfo{Root: p.Root, Sites: p.Sites, Replicas: p.Replicas, Holders: make(map[string]string, len(p.Nodes))}
		for id, h := range p.Nodes {
			pi.Holders[id] = h.State
			if h.State == coordinator.HolderPinned && isLive[id] {
				pi.LivePinned++
			}
		}
		pi.UnderReplicated = pi.LivePinned < pi.Replicas
		out.Placements = append(out.Placements, pi)
	}
	slices.SortFunc(out.Placements, func(a, b api.PlacementInfo) int {
		if a.UnderReplicated != b.UnderReplicated {
			if a.UnderReplicated {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Root, b.Root)
	})
	writeJSON(w, http.StatusOK, out)
}
