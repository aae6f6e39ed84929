package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
)

// Garbage collection of placed content. A placement stays until someone
// removes it; content stored for an S3 object that was deleted or
// overwritten, or placed by a gateway that stopped before it recorded
// the object, would stay on nodes forever. The collector unplaces a root
// once nothing has referenced it for Config.CollectGrace:
//
//  1. Candidates are placements every label of which (Placement.Sites:
//     the site or s3_<bucket> each store was made for) is claimed by a
//     registered ReferenceSource. A root deployed for a site, or with no
//     label, is never a candidate: nothing here knows all of its
//     referents.
//  2. A candidate no source references is stamped Unreferenced (the
//     first pass that finds it so); one referenced again loses its
//     stamp. A root stamped at least CollectGrace ago is marked
//     Collecting, with compare-and-set.
//  3. Once every mark of the pass is written, the sources are read
//     again. A marked root referenced now loses its mark; the others are
//     deleted from the placements bucket at the revision the mark wrote,
//     so any write since (a store that found the mark and cleared it,
//     a deploy of the same root, a holder's answer) makes the delete fail
//     and the root stays.
//  4. Every coordinator sees the delete in its watch and tells the
//     holders connected to it to unpin the root: each drops the pin and
//     collects the blocks no other root of it reaches. A holder not
//     connected then drops it at its next session (the placed list).
//     content.collected is emitted.
//
// A store that records a reference to a root calls Keep after recording
// it: Keep reads the placement and clears a mark it finds. Either the
// collector's last read saw the reference (step 3 keeps the root), or
// that read came before the record, so the mark came before Keep's read:
// Keep clears it and the delete fails, or the delete came first and Keep
// reports the root unplaced, and the store places it again before it
// acknowledges.

// ReferenceSource tells the collector which roots something still
// references. Sources are added with AddReferenceSource, by the parts
// that keep the referents (the S3 API's buckets).
type ReferenceSource interface {
	// Claims reports whether this source knows every referent of content
	// placed under label (a Placement.Sites entry): the collector
	// considers a placement only when each of its labels is claimed.
	Claims(label string) bool
	// Referenced returns every root the source references now, read
	// from the bus (not from a cache that may lag behind it).
	Referenced(ctx context.Context) (map[string]bool, error)
}

// CollectLease is the key, in the leases bucket, of the lease that lets
// one coordinator of a cluster at a time run the collector.
const CollectLease = "collector"

// CollectStats counts what one pass of the collector did.
type CollectStats struct {
	Candidates int // placements whose labels are all claimed and that nothing references
	Stamped    int // of which found unreferenced for the first time
	Marked     int // of which marked for collection (past the grace period)
	Kept       int // marked roots referenced again or changed since their mark
	Collected  int // unplaced
	// Outcome is what the pass did with each candidate root:
	// "unreferenced" (in its grace period), "stamped", "marked" (and not
	// yet decided), "kept" or "collected".
	Outcome map[string]string
}

func (st *CollectStats) note(root, what string) {
	if st.Outcome == nil {
		st.Outcome = map[string]string{}
	}
	st.Outcome[root] = what
}

// AddReferenceSource adds src to the sources the collector asks. The
// collector collects nothing until a source is added.
func (c *Coordinator) AddReferenceSource(src ReferenceSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append(c.sources, src)
}

func (c *Coordinator) referenceSources() []ReferenceSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sources)
}

// claimed reports whether every label of p is claimed by a source.
func claimed(srcs []ReferenceSource, p Placement) bool {
	if len(p.Sites) == 0 {
		return false
	}
	for _, l := range p.Sites {
		if !slices.ContainsFunc(srcs, func(s ReferenceSource) bool { return s.Claims(l) }) {
			return false
		}
	}
	return true
}

// referenced asks every source, in the order they were added.
func referenced(ctx context.Context, srcs []ReferenceSource) (map[string]bool, error) {
	out := map[string]bool{}
	for _, s := range srcs {
		refs, err := s.Referenced(ctx)
		if err != nil {
			return nil, fmt.Errorf("coordinator: collect: referents: %w", err)
		}
		for r := range refs {
			out[r] = true
		}
	}
	return out, nil
}

type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// takeLease takes or renews the lease name for d, unless another
// coordinator holds it unexpired.
func (c *Coordinator) takeLease(ctx context.Context, name string, d time.Duration) (bool, error) {
	now := c.cfg.Now().UTC()
	got := false
	_, err := events.Update(ctx, c.lkv, name, func(old []byte) ([]byte, error) {
		got = false
		var l lease
		if old != nil && json.Unmarshal(old, &l) == nil && l.Holder != c.cfg.ID && now.Before(l.Until) {
			return nil, events.ErrNoChange
		}
		got = true
		return json.Marshal(lease{Holder: c.cfg.ID, Until: now.Add(d)})
	})
	if err != nil {
		return false, fmt.Errorf("coordinator: lease %s: %w", name, err)
	}
	return got, nil
}

// Collect runs one pass of the collector (see the top of this file) if
// this coordinator holds (or takes) the collector's lease, and returns
// what it did.
func (c *Coordinator) Collect(ctx context.Context) (CollectStats, error) {
	var st CollectStats
	srcs := c.referenceSources()
	if len(srcs) == 0 {
		return st, nil
	}
	leaseFor := 2 * c.cfg.CollectInterval
	if leaseFor <= 0 {
		leaseFor = 2 * defaultCollectInterval
	}
	if ok, err := c.takeLease(ctx, CollectLease, leaseFor); err != nil || !ok {
		return st, err
	}
	c.cmetrics.passes.Inc()
	defer func() {
		c.cmetrics.unreferenced.Set(float64(st.Candidates - st.Collected))
		c.cmetrics.kept.Add(float64(st.Kept))
		c.cmetrics.collected.Add(float64(st.Collected))
	}()
	refs, err := referenced(ctx, srcs)
	if err != nil {
		return st, err
	}
	now := c.cfg.Now().UTC()
	grace := c.cfg.CollectGrace
	type mark struct {
		p   Placement
		rev uint64
	}
	var marks []mark
	for _, p := range c.Placements() {
		if !claimed(srcs, p) || refs[p.Root] {
			if !p.Unreferenced.IsZero() || !p.Collecting.IsZero() {
				if err := c.unmark(ctx, p.Root); err != nil {
					return st, err
				}
			}
			continue
		}
		st.Candidates++
		st.note(p.Root, "unreferenced")
		if p.Unreferenced.IsZero() {
			out, err := c.updatePlacement(ctx, p.Root, func(p *Placement) bool {
				if !p.Unreferenced.IsZero() || !claimed(srcs, *p) || p.Replicas == 0 {
					return false
				}
				p.Unreferenced = now
				return true
			})
			if err != nil {
				return st, err
			}
			if out.Root != "" {
				st.Stamped++
				st.note(p.Root, "stamped")
				c.log.Info("content unreferenced: collected after the grace period", "root", p.Root, "labels", p.Sites, "grace", grace)
			}
			continue
		}
		if now.Sub(p.Unreferenced) < grace {
			continue
		}
		out, rev, err := c.updatePlacementRev(ctx, p.Root, func(p *Placement) bool {
			if p.Unreferenced.IsZero() || now.Sub(p.Unreferenced) < grace || !claimed(srcs, *p) || p.Replicas == 0 {
				return false
			}
			p.Collecting = now
			return true
		})
		if err != nil {
			return st, err
		}
		if out.Root != "" {
			marks = append(marks, mark{p: out, rev: rev})
			st.note(p.Root, "marked")
		}
	}
	st.Marked = len(marks)
	if len(marks) == 0 {
		return st, nil
	}
	// The last check, after every mark is written. A failure leaves the
	// marks: the next pass checks again, and a store clears them.
	refs, err = referenced(ctx, srcs)
	if err != nil {
		return st, err
	}
	for _, m := range marks {
		if refs[m.p.Root] {
			st.Kept++
			st.note(m.p.Root, "kept")
			if err := c.unmark(ctx, m.p.Root); err != nil {
				return st, err
			}
			continue
		}
		err := c.pkv.Delete(ctx, m.p.Root, jetstream.LastRevision(m.rev))
		if errors.Is(err, jetstream.ErrKeyExists) {
			st.Kept++ // written since the mark: kept, looked at again next pass
			st.note(m.p.Root, "kept")
			c.log.Info("content marked for collection changed since: kept", "root", m.p.Root)
			continue
		}
		if err != nil {
			return st, fmt.Errorf("coordinator: collect %s: %w", m.p.Root, err)
		}
		st.Collected++
		st.note(m.p.Root, "collected")
		holders := slices.Sorted(func(yield func(string) bool) {
			for id := range m.p.Nodes {
				if !yield(id) {
					return
				}
			}
		})
		c.log.Info("content collected: unplaced", "root", m.p.Root, "labels", m.p.Sites, "holders", holders, "unreferenced", m.p.Unreferenced)
		c.emit(ctx, fmt.Sprintf("content.collected/%s/%d", m.p.Root, m.rev), events.TypeContentCollected, events.ContentCollected{
			Root: m.p.Root, Labels: m.p.Sites, Nodes: holders, Unreferenced: m.p.Unreferenced, Coordinator: c.cfg.ID,
		})
	}
	if st.Collected > 0 || st.Kept > 0 {
		c.log.Info("collector pass", "candidates", st.Candidates, "marked", st.Marked, "kept", st.Kept, "collected", st.Collected)
	}
	return st, nil
}

// unmark clears root's Unreferenced stamp and Collecting mark.
func (c *Coordinator) unmark(ctx context.Context, root string) error {
	_, err := c.updatePlacement(ctx, root, func(p *Placement) bool {
		if p.Unreferenced.IsZero() && p.Collecting.IsZero() {
			return false
		}
		p.Unreferenced, p.Collecting = time.Time{}, time.Time{}
		return true
	})
	return err
}

// Keep is what a store calls once it has recorded a reference to root
// (an S3 object recorded in its bucket): it reads root's placement and
// clears a collector's mark or stamp it finds, so the collector's delete
// (at the revision it marked) fails, and adds label (the store's,
// s3_<bucket>) to its labels unless one of the same kind (claimed by the
// same source) is there: a store of bytes already placed for something
// else (a preview) places nothing, and the label keeps that other from
// unplacing it alone (Release). It reports whether root is placed;
// false means the collector unplaced it before the reference was
// recorded (or it was never placed), and the caller must place it again
// and wait for its holders before it acknowledges.
func (c *Coordinator) Keep(ctx context.Context, root, label string) (bool, error) {
	now := c.cfg.Now().UTC()
	placed, changed := false, false
	var out Placement
	// A label of the same kind (one the same source claims) is as good:
	// labels decide whether the collector looks at a root, not what
	// references it, and one per store would grow the placement with
	// every bucket holding the same bytes (an empty object).
	srcs := c.referenceSources()
	sameKind := func(l string) bool {
		return l == label || slices.ContainsFunc(srcs, func(s ReferenceSource) bool { return s.Claims(label) && s.Claims(l) })
	}
	// Read from the leader: a replica's copy could predate the mark, and
	// the delete at the mark's revision would then succeed.
	rev, err := events.Update(ctx, c.pkvLead, root, func(old []byte) ([]byte, error) {
		placed, changed = false, false
		if old == nil {
			return nil, events.ErrNoChange
		}
		p, err := decodePlacement(old)
		if err != nil {
			return nil, err
		}
		placed = p.Replicas > 0
		labelled := label == "" || slices.ContainsFunc(p.Sites, sameKind)
		if !placed || (p.Collecting.IsZero() && p.Unreferenced.IsZero() && labelled) {
			return nil, events.ErrNoChange
		}
		if !labelled {
			p.Sites = append(p.Sites, label)
			slices.Sort(p.Sites)
		}
		p.Unreferenced, p.Collecting = time.Time{}, time.Time{}
		p.Updated = now
		out, changed = p, true
		return json.Marshal(p)
	})
	if err != nil {
		return false, fmt.Errorf("coordinator: keep %s: %w", root, err)
	}
	if changed {
		c.log.Info("content marked for collection is referenced again: kept", "root", root)
		c.storePlacement(out, rev)
	}
	return placed, nil
}
