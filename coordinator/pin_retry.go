package coordinator

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxPinSources bounds the fallback sources in one pin order.
const maxPinSources = 8

// pinSources lists where a node may fetch p's root besides p.CAR: the
// trustless CAR URL on the HTTP port of every other live node that holds
// it (http://HOLDER/ipfs/ROOT?format=car), ordered by node id.
func (c *Coordinator) pinSources(p Placement, except string) []string {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range p.Holders(HolderPinned) {
		cs, ok := c.cache[id]
		if id == except || !ok || cs.state.State != StateLive || now.Sub(cs.state.LastSeen) > c.cfg.deadline() {
			continue
		}
		base := cs.state.Record.Record.HTTP
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		out = append(out, strings.TrimRight(base, "/")+"/ipfs/"+p.Root+"?format=car")
		if len(out) == maxPinSources {
			break
		}
	}
	return out
}

// pinBackoff is the wait before the pin order that follows the attempts'th
// failure.
func (c *Coordinator) pinBackoff(attempts int) time.Duration {
	d := c.cfg.PinRetryMin
	for i := 1; i < attempts && d < c.cfg.PinRetryMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.PinRetryMax)
}

// retryPins sends failed pin orders again, to the nodes connected here,
// once their backoff has passed and while they have attempts left; and
// audits again a holding of a node connected here that is still
// "auditing" PinRetryMin after it was said pinned and after its last
// audit ended, with no audit running and the node live here with an HTTP
// URL to audit: an audit put off (the node not yet
// live as seen here, right after a failover) or whose outcome could not be
// stored would otherwise leave it auditing for good. It runs until Close.
func (c *Coordinator) retryPins() {
	defer c.wg.Done()
	tick := min(max(c.cfg.PinRetryMin/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		now := c.cfg.Now()
		type due struct{ root, node string }
		var todo, audits []due
		c.mu.Lock()
		for root, cp := range c.placements {
			for id, h := range cp.p.Nodes {
				if c.conns[id] == nil {
					continue
				}
				switch h.State {
				case HolderFailed:
					if h.Attempts < c.cfg.PinAttempts && now.Sub(h.Since) >= c.pinBackoff(h.Attempts) {
						todo = append(todo, due{root, id})
					}
				case HolderAuditing:
					// Only when the audit would run (auditBase): a node not
					// live here or without an HTTP URL cannot be audited,
					// and asking every PinRetryMin would only repeat that.
					k := auditKey{id, root}
					if _, running := c.auditing[k]; !running && now.Sub(h.Since) >= c.cfg.PinRetryMin &&
						now.Sub(c.auditEnded[k]) >= c.cfg.PinRetryMin && auditBase(c.cache[id].state) != "" {
						audits = append(audits, due{root, id})
					}
				}
			}
		}
		for k, at := range c.auditEnded {
			if now.Sub(at) >= c.cfg.PinRetryMin {
				delete(c.auditEnded, k) // no longer holds a retry back
			}
		}
		c.mu.Unlock()
		slices.SortFunc(todo, func(a, b due) int { return strings.Compare(a.root+a.node, b.root+b.node) })
		for _, d := range todo {
			c.retryPin(d.root, d.node)
		}
		for _, d := range audits {
			c.log.Info("holding still auditing with no audit running: auditing again", "root", d.root, "node", d.node)
			c.startAudit(d.node, d.root)
		}
		if f := c.retryPassed.Load(); f != nil {
			(*f)(now)
		}
	}
}

// retryPin sets node's failed holding of root back to pending (keeping its
// attempt count); storing the placement sends the order again.
func (c *Coordinator) retryPin(root, node string) {
	now := c.cfg.Now().UTC()
	out, err := c.updatePlacement(c.ctx, root, func(p *Placement) bool {
		h, ok := p.Nodes[node]
		if !ok || h.State != HolderFailed || h.Attempts >= c.cfg.PinAttempts {
			return false // changed meanwhile
		}
		p.Nodes[node] = Holder{State: HolderPending, Since: now, Attempts: h.Attempts, Replaces: h.Replaces}
		return true
	})
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("pin retry not stored", "root", root, "node", node, "err", err)
		}
		return
	}
	if out.Root != "" {
		c.log.Info("retrying pin", "root", root, "node", node, "attempt", out.Nodes[node].Attempts+1)
	}
}
