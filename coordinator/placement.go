package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
)

// PlacementDurable is the durable consumer name of the placement role on
// site.deployed. Every coordinator subscribes under this one name, so each
// deploy is placed once, by whichever coordinator takes it.
const PlacementDurable = "placement"

// Holder states in a Placement.
const (
	HolderPending  = "pending"  // ordered to pin, no answer yet
	HolderAuditing = "auditing" // says it pinned; counts once its audit passes
	HolderPinned   = "pinned"   // holds the whole DAG: answered and passed its audit
	HolderFailed   = "failed"   // answered with an error
)

// Placement is a root's entry in the placements KV bucket (key: root CID):
// which nodes hold it or should.
type Placement struct {
	Root     string            `json:"root"`
	Replicas int               `json:"replicas"`          // copies wanted
	CAR      string            `json:"car"`               // where nodes fetch it
	Sites    []string          `json:"sites,omitempty"`   // sites it was deployed for
	Partial  bool              `json:"partial,omitempty"` // the CAR holds only the root's own blocks (events.SiteDeployed)
	Near     string            `json:"near,omitempty"`    // a root whose holders are preferred, and named as the pin's base
	Nodes    map[string]Holder `json:"nodes"`             // by node id
	Updated  time.Time         `json:"updated"`
	// Unreferenced is when the collector (collect.go) first found that
	// nothing references the root; cleared when something does again.
	Unreferenced time.Time `json:"unreferenced,omitzero"`
	// Collecting is the collector's mark, set with compare-and-set
	// before its last check of the root's referents: the collector
	// deletes the placement only at the revision it marked, and a store
	// that finds the mark clears it (Keep), which makes that delete fail.
	Collecting time.Time `json:"collecting,omitzero"`
}

// Holder is one node's part in a Placement.
type Holder struct {
	State string    `json:"state"` // HolderPending, HolderPinned or HolderFailed
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"` // with HolderFailed
	// Attempts counts the pin orders this node failed in a row; the
	// order is sent again after a backoff until Config.PinAttempts.
	Attempts int `json:"attempts,omitempty"`
	// Replaces names the holder whose copy this one takes when holdings
	// are rebalanced: once this holder passes its audit, that one is
	// dropped (and told to unpin).
	Replaces string `json:"replaces,omitempty"`
}

// Holders returns the nodes in state, ordered by id.
func (p Placement) Holders(state string) []string {
	var out []string
	for id, h := range p.Nodes {
		if h.State == state {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

type cachedPlacement struct {
	p   Placement
	rev uint64
}

func decodePlacement(b []byte) (Placement, error) {
	var p Placement
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: placement: %w", ErrMalformed, err)
	}
	return p, nil
}

// Placement returns the root's placement as last seen in the bucket.
func (c *Coordinator) Placement(root string) (Placement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.placements[root]
	return cp.p, ok
}

// PinnedLive returns the live nodes that hold root, ordered by id.
func (c *Coordinator) PinnedLive(ctx context.Context, root string) ([]string, error) {
	p, ok := c.Placement(root)
	if !ok {
		return nil, nil
	}
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range live {
		if p.Nodes[s.Node()].State == HolderPinned {
			out = append(out, s.Node())
		}
	}
	return out, nil
}

// Place makes sure d.Root is placed on d.Replicas live nodes: live holders
// (pinned or pending) count, and live nodes that are not yet holders are
// added as pending, least loaded first, until there are enough. The
// placements bucket is written with compare-and-set; coordinators watching
// it send pin orders to the nodes connected to them. With fewer live
// nodes than replicas it places on all of them and returns an error
// wrapping ErrTooFewNodes. Nodes that failed the root PinAttempts times
// are not taken again.
func (c *Coordinator) Place(ctx context.Context, d events.SiteDeployed) (Placement, error) {
	return c.place(ctx, d, placeOpts{})
}

// placeOpts are place's variants.
type placeOpts struct {
	// retryExhausted: nodes that failed the root PinAttempts times are
	// taken too (with a fresh count), after every other node, when no
	// other live node is left.
	retryExhausted bool
	// exhaustedBefore, when set, limits retryExhausted to nodes that
	// failed before it: a site.deployed redelivered (the placement was
	// short of nodes) does not order again a node that failed since the
	// event was published.
	exhaustedBefore time.Time
	// repair: a repair of a placement read before (re-replication, a
	// holder that failed its audit or its pin attempts) tops it up and
	// never makes a placement that is gone: it was unplaced or collected
	// since it was read, and one made again would have no labels, so no
	// collector would ever look at it again.
	repair bool
}

// repair places p.Root again on enough live nodes, if it is still placed.
func (c *Coordinator) repair(ctx context.Context, p Placement, retryExhausted bool) (Placement, error) {
	return c.place(ctx, events.SiteDeployed{Root: p.Root, Replicas: p.Replicas, CAR: p.CAR}, placeOpts{retryExhausted: retryExhausted, repair: true})
}

// place is Place, with opts.
func (c *Coordinator) place(ctx context.Context, d events.SiteDeployed, opts placeOpts) (Placement, error) {
	if d.Replicas <= 0 {
		d.Replicas = 1
	}
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return Placement{}, err
	}
	// New roots go to the nodes with the most storage still offered
	// (what --max-storage leaves beyond what they hold, at most their free
	// disk), so a node that joins starts receiving work; then the least
	// loaded. A node that offers nothing more gets no new root.
	live = slices.DeleteFunc(live, func(s NodeState) bool {
		return s.Status.Capacity > 0 && s.Status.Available() <= 0
	})
	slices.SortFunc(live, func(a, b NodeState) int {
		if av, bv := a.Status.Available(), b.Status.Available(); av != bv {
			return cmp.Compare(bv, av)
		}
		if a.Status.Load != b.Status.Load {
			return cmp.Compare(a.Status.Load, b.Status.Load)
		}
		return strings.Compare(a.Node(), b.Node())
	})
	if d.Near != "" {
		// A bucket's content stays together: the nodes holding the
		// root named come first, so a new root of the bucket finds
		// the rest of its DAG where it is placed.
		if near, ok := c.Placement(d.Near); ok {
			slices.SortStableFunc(live, func(a, b NodeState) int {
				return cmp.Compare(nearRank(near, b.Node()), nearRank(near, a.Node()))
			})
		}
	}
	now := c.cfg.Now().UTC()
	var out Placement
	var holders int
	var labelled bool // d.Site is new to the placement written
	rev, err := events.Update(ctx, c.pkv, d.Root, func(old []byte) ([]byte, error) {
		labelled = false
		p := Placement{Root: d.Root, Nodes: map[string]Holder{}}
		if old == nil && opts.repair {
			out = Placement{}
			return nil, events.ErrNoChange
		}
		if old != nil {
			var err error
			if p, err = decodePlacement(old); err != nil {
				return nil, err
			}
			if opts.repair && p.Replicas == 0 && len(p.Nodes) == 0 {
				// Emptied by Release, whose delete follows: gone.
				out = Placement{}
				return nil, events.ErrNoChange
			}
			if p.Nodes == nil {
				p.Nodes = map[string]Holder{}
			}
		}
		before, _ := json.Marshal(p)
		p.Replicas = max(p.Replicas, d.Replicas)
		if d.CAR != "" {
			p.CAR = d.CAR
		}
		if d.Partial {
			p.Partial = true
		}
		if d.Near != "" && p.Near == "" {
			p.Near = d.Near
		}
		if d.Site != "" && !slices.Contains(p.Sites, d.Site) {
			p.Sites = append(p.Sites, d.Site)
			slices.Sort(p.Sites)
			labelled = true
		}
		if d.Site != "" {
			// A deploy or a store of the root: referenced again, so a
			// collector's mark goes (its delete at the marked revision
			// fails).
			p.Unreferenced, p.Collecting = time.Time{}, time.Time{}
		}
		holders = 0
		for _, s := range live {
			if h, ok := p.Nodes[s.Node()]; ok && h.State != HolderFailed {
				holders++
			}
		}
		for _, s := range live {
			if holders >= p.Replicas {
				break
			}
			h, ok := p.Nodes[s.Node()]
			if ok && (h.State != HolderFailed || h.Attempts >= c.cfg.PinAttempts) {
				continue // a holder, or a node that failed every attempt
			}
			p.Nodes[s.Node()] = Holder{State: HolderPending, Since: now, Attempts: h.Attempts}
			holders++
		}
		for _, s := range live {
			if !opts.retryExhausted || holders >= p.Replicas {
				break
			}
			if h, ok := p.Nodes[s.Node()]; ok && h.State == HolderFailed && h.Attempts >= c.cfg.PinAttempts &&
				(opts.exhaustedBefore.IsZero() || h.Since.Before(opts.exhaustedBefore)) {
				p.Nodes[s.Node()] = Holder{State: HolderPending, Since: now}
				holders++
			}
		}
		out = p
		after, _ := json.Marshal(p)
		if string(before) == string(after) {
			return nil, events.ErrNoChange
		}
		p.Updated = now
		out = p
		return json.Marshal(p)
	})
	if err != nil {
		return Placement{}, err
	}
	if out.Root == "" {
		return Placement{}, nil // a repair of a placement gone since
	}
	c.storePlacement(out, rev)
	if labelled {
		c.replicatedFor(out, d.Site, now)
	}
	if holders < out.Replicas {
		return out, fmt.Errorf("%w: %s wants %d copies, %d live nodes can hold it", ErrTooFewNodes, d.Root, out.Replicas, holders)
	}
	return out, nil
}

// replicatedFor emits content.replicated for each holder of p that
// passed its audit before site was added to p's labels. The publisher
// reads the labels when it hears of a holder: a holding that came before
// the label would otherwise never count for the site, whose site.deployed
// the publisher may have handled before the root was held (a bucket's
// root placed for the bucket, then for the site that follows it).
func (c *Coordinator) replicatedFor(p Placement, site string, now time.Time) {
	for _, node := range p.Holders(HolderPinned) {
		c.emit(c.ctx, "content.replicated/"+p.Root+"/"+node+"/"+site+"/"+now.Format(time.RFC3339Nano), events.TypeContentReplicated,
			events.ContentReplicated{Root: p.Root, Node: node, Site: site})
	}
}

// nearRank is 1 for a node that holds (or is ordered to hold) p's root.
func nearRank(p Placement, node string) int {
	if h, ok := p.Nodes[node]; ok && h.State != HolderFailed {
		return 1
	}
	return 0
}

// onDeployed is the placement consumer's handler.
func (c *Coordinator) onDeployed(ctx context.Context, ev events.Event) error {
	var d events.SiteDeployed
	if err := ev.Decode(&d); err != nil {
		c.log.Warn("bad site.deployed event", "id", ev.ID, "err", err)
		return nil
	}
	// A deploy or store asks for the root again: nodes that failed it
	// every attempt before it are ordered again, afresh, when no other
	// live node is left, as re-replication does. Otherwise content whose
	// every holder failed (lost blocks, a failed audit) could not be
	// stored again until a node joined or left. Once per event: its
	// redeliveries find those nodes failed since.
	p, err := c.place(ctx, d, placeOpts{retryExhausted: true, exhaustedBefore: ev.Time})
	if err != nil {
		c.log.Warn("placement incomplete", "site", d.Site, "root", d.Root, "err", err)
		return err
	}
	c.log.Info("placed", "site", d.Site, "root", d.Root, "pinned", p.Holders(HolderPinned), "pending", p.Holders(HolderPending))
	return nil
}

// updatePlacement applies fn to root's placement with compare-and-set:
// fn changes p and returns true, or returns false to leave it (as does a
// root not placed). A change is stamped, stored, mirrored and its pin
// orders sent (storePlacement); the placement after it is returned, the
// zero Placement when nothing was written.
func (c *Coordinator) updatePlacement(ctx context.Context, root string, fn func(p *Placement) bool) (Placement, error) {
	p, _, err := c.updatePlacementRev(ctx, root, fn)
	return p, err
}

// updatePlacementRev is updatePlacement, also returning the revision
// written (0 when nothing was).
func (c *Coordinator) updatePlacementRev(ctx context.Context, root string, fn func(p *Placement) bool) (Placement, uint64, error) {
	now := c.cfg.Now().UTC()
	var out Placement
	rev, err := events.Update(ctx, c.pkv, root, func(old []byte) ([]byte, error) {
		out = Placement{}
		if old == nil {
			return nil, events.ErrNoChange
		}
		p, err := decodePlacement(old)
		if err != nil {
			return nil, err
		}
		if p.Nodes == nil {
			p.Nodes = map[string]Holder{}
		}
		if !fn(&p) {
			return nil, events.ErrNoChange
		}
		p.Updated = now
		out = p
		return json.Marshal(p)
	})
	if err != nil || out.Root == "" {
		return Placement{}, 0, err
	}
	c.storePlacement(out, rev)
	return out, rev, nil
}

// Unplace drops root's placement: every holder is told to unpin it (and
// collects its blocks), and the entry is deleted, so no re-replication
// places it again. Unplacing a root without a placement does nothing.
func (c *Coordinator) Unplace(ctx context.Context, root string) error {
	_, err := c.updatePlacement(ctx, root, func(p *Placement) bool {
		if p.Replicas == 0 && len(p.Nodes) == 0 {
			return false
		}
		p.Replicas, p.Nodes = 0, map[string]Holder{}
		return true
	})
	if err != nil {
		return fmt.Errorf("coordinator: unplace %s: %w", root, err)
	}
	if err := c.pkv.Delete(ctx, root); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("coordinator: unplace %s: %w", root, err)
	}
	return nil
}

// Release drops label from root's placement (an expired preview's
// site): when no label is left, the placement is unplaced as Unplace does
// and Release reports true; otherwise it stays for the others (an S3
// object of the same bytes, another site), and what claims them decides
// (the collector). Label removal and unplacing are one compare-and-set,
// and the entry is deleted at the revision it wrote, so a store that
// placed the root again meanwhile keeps it.
func (c *Coordinator) Release(ctx context.Context, root, label string) (bool, error) {
	empty := false
	_, rev, err := c.updatePlacementRev(ctx, root, func(p *Placement) bool {
		n := len(p.Sites)
		p.Sites = slices.DeleteFunc(p.Sites, func(s string) bool { return s == label })
		empty = len(p.Sites) == 0
		if empty {
			p.Replicas, p.Nodes = 0, map[string]Holder{}
			return true
		}
		return len(p.Sites) != n
	})
	if err != nil {
		return false, fmt.Errorf("coordinator: release %s: %w", root, err)
	}
	if rev == 0 || !empty {
		return false, nil
	}
	err = c.pkv.Delete(ctx, root, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil // placed again since
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, fmt.Errorf("coordinator: release %s: %w", root, err)
	}
	return true, nil
}

// storePlacement mirrors p at revision rev (unless a newer one is known)
// and sends the pin orders it holds for nodes connected here.
func (c *Coordinator) storePlacement(p Placement, rev uint64) {
	c.mu.Lock()
	cur, had := c.placements[p.Root]
	if had && cur.rev > rev {
		c.mu.Unlock()
		return
	}
	c.placements[p.Root] = cachedPlacement{p: p, rev: rev}
	var conns, dropped []*nodeConn
	for id, h := range p.Nodes {
		if h.State == HolderPending {
			if nc := c.conns[id]; nc != nil {
				conns = append(conns, nc)
			}
		}
	}
	if had && cur.rev < rev {
		for id := range cur.p.Nodes {
			if _, still := p.Nodes[id]; !still {
				if nc := c.conns[id]; nc != nil {
					dropped = append(dropped, nc)
				}
			}
		}
	}
	c.mu.Unlock()
	for _, nc := range conns {
		nc.sendPin(p)
	}
	for _, nc := range dropped {
		nc.sendUnpin(p.Root)
	}
}

func (c *Coordinator) applyPlacement(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		// A placement deleted (collected, or unplaced): its holders
		// connected here are told to unpin it. (Unplace empties the
		// holders before it deletes, so they are told once.)
		c.mu.Lock()
		cur, had := c.placements[e.Key()]
		if had && cur.rev > e.Revision() {
			c.mu.Unlock()
			return // placed again since (a newer revision written here)
		}
		delete(c.placements, e.Key())
		var conns []*nodeConn
		if had {
			for id := range cur.p.Nodes {
				if nc := c.conns[id]; nc != nil {
					conns = append(conns, nc)
				}
			}
		}
		c.mu.Unlock()
		for _, nc := range conns {
			nc.sendUnpin(e.Key())
		}
		return
	}
	p, err := decodePlacement(e.Value())
	if err != nil {
		c.log.Warn("bad placement in KV", "root", e.Key(), "err", err)
		return
	}
	c.storePlacement(p, e.Revision())
}

// reconcile runs once a node is welcomed: it tells the node every root
// placed on it (nodeproto.Placed; the node drops other pins) and sends a
// pin order for each root it should hold or still has to fetch, so a node that
// comes back holds what the placements say. A node that still holds a
// root answers at once.
func (c *Coordinator) reconcile(n *nodeConn) {
	c.mu.Lock()
	var todo []Placement
	roots := []string{}
	for _, cp := range c.placements {
		if h, ok := cp.p.Nodes[n.node]; ok {
			roots = append(roots, cp.p.Root)
			if h.State != HolderFailed {
				todo = append(todo, cp.p)
			}
		}
	}
	c.mu.Unlock()
	slices.Sort(roots)
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgPlaced, Placed: &nodeproto.Placed{Roots: roots}}); err != nil {
		n.log.Debug("placed list not sent", "err", err)
		return
	}
	for _, p := range todo {
		n.sendPin(p)
	}
}

// ReplicationDurable is the durable consumer name of the re-replication
// role, shared by every coordinator.
const ReplicationDurable = "replication"

// onNodeChange is the re-replication consumer's handler: when a node is
// lost (or joins, adding capacity), every placement with fewer live
// holders than its replicas is placed again on other live nodes. The lost
// node stays listed: if it comes back with the content it counts again.
// The last resort orders again only nodes that failed before the event
// happened: the event says nothing new of a node that failed since, and
// it may be handled late (its consumer behind, or redelivered), after
// the node failed the very order the event's change led to.
func (c *Coordinator) onNodeChange(ctx context.Context, ev events.Event) error {
	n, _, err := c.rereplicateWith(ctx, c.Placements(), ev.Time, false)
	if n > 0 {
		c.log.Info("re-replicating", "event", ev.Type, "roots", n)
	}
	return err
}

// Rereplicate places again every root with fewer live holders (pinned or
// pending) than its replicas, and returns how many it touched. Roots that
// cannot reach their replicas for want of live nodes are logged and left
// for the next node.joined. As a last resort it orders a root again from
// nodes that failed it PinAttempts times (with a fresh count), so a
// network with no other node recovers once the cause is gone.
func (c *Coordinator) Rereplicate(ctx context.Context) (int, error) {
	return c.rereplicate(ctx, c.Placements())
}

// rereplicate is Rereplicate over ps.
func (c *Coordinator) rereplicate(ctx context.Context, ps []Placement) (int, error) {
	touched, _, err := c.rereplicateWith(ctx, ps, time.Time{}, false)
	return touched, err
}

// repairPass is the pass RepairInterval paces: Rereplicate over every
// placement, run by one coordinator of a cluster at a time (the lease
// RepairLease), which orders an exhausted node again only once it failed
// at least RepairRetryAfter ago, and logs the roots left short in one
// line; then it drops surplus copies (TrimSurplus). It returns how many
// roots were short and how many of those no live node could fill.
func (c *Coordinator) repairPass(ctx context.Context) (touched, short int, err error) {
	if ok, err := c.takeLease(ctx, RepairLease, 2*c.cfg.RepairInterval); err != nil || !ok {
		return 0, 0, err
	}
	touched, short, err = c.rereplicateWith(ctx, c.Placements(), c.cfg.Now().Add(-c.cfg.RepairRetryAfter), true)
	if touched > 0 {
		c.log.Info("repair pass: roots short of live holders placed again", "roots", touched, "short_of_nodes", short)
	}
	if err != nil {
		return touched, short, err
	}
	_, err = c.TrimSurplus(ctx)
	return touched, short, err
}

// RepairLease is the key, in the leases bucket, of the lease that lets
// one coordinator of a cluster run the repair pass.
const RepairLease = "repairer"

// rereplicateWith is rereplicate; exhaustedBefore, when set, limits the
// last resort to nodes that failed before it (placeOpts), and quiet
// counts the roots short of live nodes instead of logging each.
func (c *Coordinator) rereplicateWith(ctx context.Context, ps []Placement, exhaustedBefore time.Time, quiet bool) (touched, short int, err error) {
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return 0, 0, err
	}
	isLive := make(map[string]bool, len(live))
	for _, s := range live {
		isLive[s.Node()] = true
	}
	for _, p := range ps {
		held := 0
		for id, h := range p.Nodes {
			if isLive[id] && h.State != HolderFailed {
				held++
			}
		}
		if held >= p.Replicas {
			continue
		}
		touched++
		_, err := c.place(ctx, events.SiteDeployed{Root: p.Root, Replicas: p.Replicas, CAR: p.CAR},
			placeOpts{retryExhausted: true, exhaustedBefore: exhaustedBefore, repair: true})
		switch {
		case errors.Is(err, ErrTooFewNodes):
			short++
			if !quiet {
				c.logShort(p.Root, err)
			}
		case err != nil:
			return touched, short, err
		}
	}
	return touched, short, nil
}

// logShort logs a root short of live nodes: a warning, except during the
// first heartbeat deadline after this coordinator started, when the nodes
// of a network that restarts are still rejoining one after another (the
// first to join would otherwise raise an alarm the second silences a
// moment later). The root is placed again on every node.joined either way.
func (c *Coordinator) logShort(root string, err error) {
	if c.cfg.Now().Sub(c.started) < c.cfg.deadline() {
		c.log.Info("under-replicated while nodes rejoin", "root", root, "err", err)
		return
	}
	c.log.Warn("under-replicated", "root", root, "err", err)
}

// sendPin sends one pin order for p unless this session already got it,
// or p is stale: the node's holding of the root is no longer the one p
// shows. (p is read before the send; meanwhile the write's own send and
// the watch's send of the same revision race, and the node may have
// answered one and failed its audit before the other is sent.) The check
// is made under pinMu, which an answer takes after the placement it
// writes is the one this coordinator mirrors.
func (n *nodeConn) sendPin(p Placement) {
	if f := n.c.beforeSendPin.Load(); f != nil {
		(*f)(p.Root, n.node)
	}
	n.pinMu.Lock()
	if !n.ready || n.sent[p.Root] || !n.c.holdingIs(p.Root, n.node, p.Nodes[n.node]) {
		n.pinMu.Unlock()
		return
	}
	n.sent[p.Root] = true
	n.pinMu.Unlock()
	site := ""
	if len(p.Sites) > 0 {
		site = p.Sites[0]
	}
	pin := &nodeproto.Pin{Root: p.Root, CAR: p.CAR, Sources: n.c.pinSources(p, n.node), Site: site, Partial: p.Partial, Base: p.Near,
		Check: p.Nodes[n.node].State == HolderPending}
	if len(pin.Sources) > 0 {
		pin.Grant = n.c.grant(n.node, p.Root, nodeproto.GrantDAG)
	}
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgPin, Pin: pin}); err != nil {
		n.log.Debug("pin order not sent", "root", p.Root, "err", err)
		n.pinMu.Lock()
		delete(n.sent, p.Root)
		n.pinMu.Unlock()
		return
	}
	n.log.Info("pin order sent", "root", p.Root)
}

// holdingIs reports whether node's holding of root, in the placement
// this coordinator mirrors, is still h (same state, since the same time).
func (c *Coordinator) holdingIs(root, node string, h Holder) bool {
	cur, ok := c.holding(root, node)
	return ok && cur.State == h.State && cur.Since.Equal(h.Since)
}

// holding returns node's holding of root in the placement this
// coordinator mirrors; false when root is not placed on node.
func (c *Coordinator) holding(root, node string) (Holder, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.placements[root].p.Nodes[node]
	return h, ok
}

// sendUnpin tells the node that root is no longer placed on it. A node
// that misses it drops the root at its next session (the placed list).
func (n *nodeConn) sendUnpin(root string) {
	n.pinMu.Lock()
	ready := n.ready
	delete(n.sent, root)
	n.pinMu.Unlock()
	if !ready {
		return
	}
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgUnpin, Unpin: &nodeproto.Unpin{Root: root}}); err != nil {
		n.log.Debug("unpin not sent", "root", root, "err", err)
		return
	}
	n.log.Info("unpin sent", "root", root)
}

// unpinUnplaced tells the node to unpin root, which it answered it
// pinned, unless root is placed on it. A node pins a root after the
// unpin that unplaced it when it handles the order after the unpin (each
// runs on a goroutine of its own there, and the unpin's may run first,
// finding nothing to drop) or gets it after the unpin (a sendPin that
// read the placement before it went); it would keep the root, and every
// block the root reaches, until its next session. The check and the send
// are made under pinMu, as sendPin's check is: an order for a placement
// made since is sent after this unpin, and the node keeps a root ordered
// again after an unpin.
func (n *nodeConn) unpinUnplaced(root string) {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	if _, placed := n.c.holding(root, n.node); !n.ready || placed {
		return
	}
	if err := n.write(nodeproto.Message{Type: nodeproto.MsgUnpin, Unpin: &nodeproto.Unpin{Root: root}}); err != nil {
		n.log.Debug("unpin not sent", "root", root, "err", err)
		return
	}
	n.log.Info("unpin sent: the node pinned a root not placed on it", "root", root)
}

// pinned records a node's answer to a pin order and, when it holds the
// root, emits content.replicated.
func (n *nodeConn) pinned(pm *nodeproto.Pinned) error {
	c := n.c
	now := c.cfg.Now().UTC()
	var site string
	out, err := c.updatePlacement(c.ctx, pm.Root, func(p *Placement) bool {
		cur, ok := p.Nodes[n.node]
		if !ok || ((cur.State == HolderPinned || cur.State == HolderAuditing) && pm.Error == "") {
			return false // not placed here, or known to hold it
		}
		h := Holder{State: HolderAuditing, Since: now, Replaces: cur.Replaces}
		if pm.Error != "" {
			h = Holder{State: HolderFailed, Since: now, Error: clipN(pm.Error, 200), Attempts: cur.Attempts + 1, Replaces: cur.Replaces}
		}
		p.Nodes[n.node] = h
		if len(p.Sites) > 0 {
			site = p.Sites[0]
		}
		return true
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("coordinator: storing pin result: %w", err)
	}
	n.pinMu.Lock()
	delete(n.sent, pm.Root)
	n.pinMu.Unlock()
	if out.Root == "" {
		if pm.Error == "" {
			if p, ok := c.Placement(pm.Root); ok && p.Nodes[n.node].State == HolderAuditing {
				c.startAudit(n.node, pm.Root) // an audit a restart interrupted
			}
			n.unpinUnplaced(pm.Root)
		}
		return nil
	}
	if pm.Error != "" {
		h := out.Nodes[n.node]
		n.log.Warn("node failed to pin", "root", pm.Root, "attempt", h.Attempts, "err", pm.Error)
		if h.Attempts >= c.cfg.PinAttempts {
			// This node will not get it: place the root elsewhere.
			if _, err := c.repair(c.ctx, out, false); err != nil {
				n.log.Warn("under-replicated", "root", out.Root, "err", err)
			}
		}
		return nil
	}
	n.log.Info("node says it pinned: auditing", "root", pm.Root, "site", site)
	c.startAudit(n.node, pm.Root)
	return nil
}

// Placements returns every placement as last seen, ordered by root.
func (c *Coordinator) Placements() []Placement {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.Sorted(maps.Keys(c.placements))
	out := make([]Placement, len(keys))
	for i, k := range keys {
		out[i] = c.placements[k].p
	}
	return out
}

func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
