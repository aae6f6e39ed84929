package s3api

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A bucket's root is placed after its change is answered (roots.go): a
// gateway stopped in between leaves the bucket's current root unplaced,
// and a site that follows the bucket unpublished at it. So every server
// looks, when it starts and every rootCheckInterval, for buckets whose
// current root is not placed, and places it (with its site) as its own
// change's. Any server of the cluster finishes what a stopped one left.

// rootCheckInterval is how often a server looks for unplaced roots.
const rootCheckInterval = 10 * time.Minute

// runRootCheck places the unplaced current roots now and every
// rootCheckInterval, until ctx ends.
func (s *Server) runRootCheck(ctx context.Context) {
	t := time.NewTicker(rootCheckInterval)
	defer t.Stop()
	for {
		if n, err := s.placeUnplacedRoots(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("s3 bucket roots not checked", "err", err)
		} else if n > 0 {
			s.log.Info("s3 bucket roots found unplaced: placing them", "buckets", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// placeUnplacedRoots queues the current root of every bucket whose root
// is not placed (and that this server has not placed itself), and
// returns how many. A record unchanged since the last look is not
// decoded again (recordCache).
func (s *Server) placeUnplacedRoots(ctx context.Context) (int, error) {
	keys, err := s.buckets.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, nil
		}
		return 0, err
	}
	var errs []error
	n := 0
	for name := range keys.Keys() {
		e, err := s.buckets.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec, err := s.records.decode(name, e.Value())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec.Root == "" || s.roots.placedHere(name, rec.Root) {
			continue
		}
		placed, err := s.cfg.Store.Placed(ctx, rec.Root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if placed {
			continue
		}
		s.log.Info("s3 bucket root not placed: placing it", "bucket", name, "root", rec.Root, "version", rec.Version)
		s.roots.add(rec)
		n++
	}
	return n, errors.Join(errs...)
}
