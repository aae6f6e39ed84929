package s3api

import (
	"context"
	"errors"
	"strings"
	"sync"
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

// runRootCheck places the unplaced current roots, and sweeps the shards
// no record names (below), now and every rootCheckInterval, until ctx
// ends.
func (s *Server) runRootCheck(ctx context.Context) {
	t := time.NewTicker(rootCheckInterval)
	defer t.Stop()
	for {
		if n, err := s.placeUnplacedRoots(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("s3 bucket roots not checked", "err", err)
		} else if n > 0 {
			s.log.Info("s3 bucket roots found unplaced: placing them", "buckets", n)
		}
		if _, err := s.sweepShards(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("s3 index shards named by no record not swept", "err", err)
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

// Shards no record names. A change writes its shards before the
// compare-and-set that names them (index.go), and deletes them when it
// loses it; a gateway stopped in between (or a write whose outcome it
// could not learn) leaves shards no record names, and no change will
// ever name them: each writes shards under new names. So the root check
// also sweeps them: a shard of bucket b (named b/<id>) that b's record
// does not name is noted the first time the sweep finds it so, and
// deleted once the sweep has found it so for shardGrace, after reading
// b's record again from the bus's leader. A change in flight names only
// shards it wrote itself, and it lasts at most maxChangeTime (buckets.go),
// far less than shardGrace: a shard found unnamed that long is no
// change's. The times are this server's clock, between two of its own
// looks, so no clock is compared with another's.

// shardGrace is how long the sweep finds a shard named by no record
// before it deletes it.
const shardGrace = time.Hour

// orphanShards are the shards the sweep found named by no record, and
// when it first did.
type orphanShards struct {
	mu    sync.Mutex
	first map[string]time.Time
}

// sweepShards runs one pass of the sweep at now and returns how many
// shards it deleted.
func (s *Server) sweepShards(ctx context.Context, now time.Time) (int, error) {
	s.orphans.mu.Lock() // one pass at a time
	defer s.orphans.mu.Unlock()
	if s.orphans.first == nil {
		s.orphans.first = map[string]time.Time{}
	}
	keys, err := s.shards.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		clear(s.orphans.first)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	byBucket := map[string][]string{}
	for k := range keys.Keys() {
		if b, _, ok := strings.Cut(k, "/"); ok {
			byBucket[b] = append(byBucket[b], k)
		}
	}
	seen := map[string]bool{}
	var errs []error
	deleted := 0
	for bucket, names := range byBucket {
		named, err := s.shardsNamed(ctx, s.buckets, bucket)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var due []string
		for _, n := range names {
			if named[n] {
				continue
			}
			seen[n] = true
			first, ok := s.orphans.first[n]
			if !ok {
				s.orphans.first[n] = now
				continue
			}
			if now.Sub(first) >= shardGrace {
				due = append(due, n)
			}
		}
		if len(due) == 0 {
			continue
		}
		// The deciding read: the record as the leader has it.
		named, err = s.shardsNamed(ctx, s.bucketsLeader, bucket)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range due {
			delete(s.orphans.first, n)
			if named[n] {
				continue
			}
			if err := s.shards.drop(ctx, []string{n}); err != nil {
				errs = append(errs, err)
				continue
			}
			s.log.Info("s3 index shard named by no record: deleted", "bucket", bucket, "shard", n)
			deleted++
		}
	}
	for n := range s.orphans.first {
		if !seen[n] {
			delete(s.orphans.first, n) // deleted, or named since
		}
	}
	return deleted, errors.Join(errs...)
}

// shardsNamed returns the shards bucket's record names, read from kv
// (none when there is no record).
func (s *Server) shardsNamed(ctx context.Context, kv jetstream.KeyValue, bucket string) (map[string]bool, error) {
	out := map[string]bool{}
	e, err := kv.Get(ctx, bucket)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := s.records.decode(bucket, e.Value())
	if err != nil {
		return nil, err
	}
	for _, sh := range rec.Shards {
		out[sh.Name] = true
	}
	return out, nil
}
