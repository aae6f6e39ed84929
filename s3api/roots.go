package s3api

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// A bucket's new root is placed in the background (storeRoot): the
// request that changed the bucket is answered once its object is held,
// without waiting for the root. Only the latest root of each bucket is
// placed: a burst of changes places the root it ends at, near the last
// root placed from here, so nodes are not asked to pin (and walk) every
// intermediate tree: the next roots are taken once the nodes hold the
// last ones (or StoreTimeout passed). FollowBucket places the current root itself.

// rootQueue holds the roots waiting to be placed, one per bucket.
type rootQueue struct {
	mu      sync.Mutex
	pending map[string]*bucketRecord // bucket → its latest record not yet placed
	placed  map[string]string        // bucket → the last root placed from here
	wake    chan struct{}            // capacity 1
}

func newRootQueue() rootQueue {
	return rootQueue{pending: map[string]*bucketRecord{}, placed: map[string]string{}, wake: make(chan struct{}, 1)}
}

// add queues rec's root (rec is the queue's: not changed by anyone after),
// replacing an older one of its bucket.
func (q *rootQueue) add(rec *bucketRecord) {
	q.mu.Lock()
	if cur, ok := q.pending[rec.Name]; !ok || cur.Version < rec.Version {
		q.pending[rec.Name] = rec
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the queued records, with the root last placed
// for each bucket ("" when none from here).
func (q *rootQueue) take() (recs []*bucketRecord, near []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for b, rec := range q.pending {
		recs = append(recs, rec)
		near = append(near, q.placed[b])
		delete(q.pending, b)
	}
	return recs, near
}

// done records root as the last placed for bucket.
func (q *rootQueue) done(bucket, root string) {
	q.mu.Lock()
	q.placed[bucket] = root
	q.mu.Unlock()
}

// placedHere reports whether root is the last root of bucket placed from
// here, or is waiting to be.
func (q *rootQueue) placedHere(bucket, root string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.placed[bucket] == root || (q.pending[bucket] != nil && q.pending[bucket].Root == root)
}

// runRoots places the queued roots until ctx ends.
func (s *Server) runRoots(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.roots.wake:
		}
		recs, near := s.roots.take()
		var placed []string
		for i, rec := range recs {
			if near[i] == "" {
				near[i] = previousRoot(rec)
			}
			if s.beforeRootPlaced != nil {
				s.beforeRootPlaced(ctx, rec.Name, rec.Root)
			}
			if ctx.Err() != nil {
				return // stopping: the next start places what is left (rootcheck.go)
			}
			if err := s.storeRoot(ctx, near[i], rec, false); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("s3 bucket root not placed", "bucket", rec.Name, "root", rec.Root, "err", err)
				continue
			}
			s.roots.done(rec.Name, rec.Root)
			placed = append(placed, rec.Root)
		}
		// One batch of roots in flight: the changes made meanwhile wait,
		// and only the latest root of each bucket is placed next.
		for _, root := range placed {
			if err := s.waitHeld(ctx, root); err != nil && ctx.Err() != nil {
				return
			}
		}
	}
}

// previousRoot is the root before rec's in its history, or "".
func previousRoot(rec *bucketRecord) string {
	if n := len(rec.History); n >= 2 {
		return rec.History[n-2].Root
	}
	return ""
}

// PlacementLabel is the label a bucket's placements carry in their
// Sites (coordinator.Placement): its objects' and its roots'.
func PlacementLabel(bucket string) string { return storeLabel(bucket) }

// BucketRoots tells what a bucket references, for garbage collection:
// its current root, the roots of its history (oldest first, the current
// one last; up to MaxHistory) and the site that follows it, if any (whose
// own history may still name older roots). ok is false for no such
// bucket.
func (s *Server) BucketRoots(ctx context.Context, bucket string) (current string, history []string, site string, ok bool, err error) {
	e, err := s.buckets.Get(ctx, bucket)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil, "", false, nil
	}
	if err != nil {
		return "", nil, "", false, fmt.Errorf("s3api: read bucket: %w", err)
	}
	rec, err := s.records.decode(bucket, e.Value())
	if err != nil {
		return "", nil, "", false, err
	}
	for _, h := range rec.History {
		history = append(history, h.Root)
	}
	return rec.Root, history, rec.Site, true, nil
}
