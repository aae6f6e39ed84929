package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/events"
)

// reportInterval is the least time between two node.reported events for
// one node; reports in between are added up into the next event.
const reportInterval = time.Second

// reportRelay aggregates visitors' reports per node before they go on the
// bus, so a burst of reports costs the stream one event. Its maps hold only
// live node ids, so they are bounded by the number of nodes.
type reportRelay struct {
	mu      sync.Mutex
	pending map[string]map[string]int // node → reason → count not yet sent
	sites   map[string]map[string]int // node → site → count not yet sent
	last    map[string]time.Time      // node → when its last event was sent
}

// relayReport counts a report of reason about the live node id (made by a
// visitor of site, or "" for the gateway's own fetch) and, at most once
// per reportInterval per node, emits node.reported with the counts
// gathered so far. Coordinators forward it to the node.
func (g *Gateway) relayReport(ctx context.Context, node, site, reason string) {
	if g.cfg.Bus == nil {
		return
	}
	rr := &g.reports
	now := g.cfg.Now()
	rr.mu.Lock()
	if rr.pending == nil {
		rr.pending, rr.sites, rr.last = make(map[string]map[string]int), make(map[string]map[string]int), make(map[string]time.Time)
	}
	p := rr.pending[node]
	if p == nil {
		p = make(map[string]int)
		rr.pending[node] = p
	}
	p[reason]++
	if site != "" {
		if rr.sites[node] == nil {
			rr.sites[node] = make(map[string]int)
		}
		rr.sites[node][site]++
	}
	if now.Sub(rr.last[node]) < reportInterval {
		rr.mu.Unlock()
		return
	}
	rr.last[node] = now
	bySite := rr.sites[node]
	delete(rr.pending, node)
	delete(rr.sites, node)
	rr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := g.cfg.Bus.Emit(ctx, events.TypeNodeReported, events.NodeReported{Node: node, Reasons: p, Gateway: g.cfg.Name, Sites: bySite}); err != nil {
		g.log.Warn("report not relayed", "node", node, "err", err)
	}
}
