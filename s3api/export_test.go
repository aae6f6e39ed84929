package s3api

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IdleTimeout is how long s keeps an idle connection open.
func IdleTimeout(s *Server) time.Duration { return s.srv.IdleTimeout }

// SetIdleTimeout changes it; call before Run.
func SetIdleTimeout(s *Server, d time.Duration) { s.srv.IdleTimeout = d }

// SetBodyIdleTimeout changes how long a body may stop arriving; call
// before Run.
func SetBodyIdleTimeout(s *Server, d time.Duration) { s.bodyIdle = d }

// FlushCharges charges the bytes served so far now, instead of at the
// next MeterInterval.
func FlushCharges(ctx context.Context, s *Server) error { return s.meter.Flush(ctx) }

// SetBeforeRootPlaced has s call hook before it places a queued bucket
// root (the change that made it already answered); call before Run.
func SetBeforeRootPlaced(s *Server, hook func(ctx context.Context, bucket, root string)) {
	s.beforeRootPlaced = hook
}

// SetPartHooks has s call staged once a part's bytes are in place in
// its upload and before its record is, and waiting before a part's
// commit or a Complete waits for the upload's lock; call before Run.
func SetPartHooks(s *Server, staged func(upload string, part int), waiting func(upload string)) {
	s.partHooks = partHooks{staged: staged, waiting: waiting}
}

// PutKey records o's CID under key in bucket as a PUT does once the
// object is held (the index and the root, no bytes), for account.
func PutKey(ctx context.Context, s *Server, account, bucket, key, cid string, size int64, tsize uint64) (root string, err error) {
	o := &object{CID: cid, Size: size, TSize: tsize, ETag: "d41d8cd98f00b204e9800998ecf8427e", Modified: s.cfg.Now().UTC().Truncate(time.Second)}
	rec, err := s.update(ctx, identity{Account: account}, bucket, putKey(ctx, "put", key, o, writeCondition{}))
	if err != nil {
		return "", err
	}
	return rec.Root, nil
}

// DeleteKey deletes key as DeleteObject does.
func DeleteKey(ctx context.Context, s *Server, account, bucket, key string) (root string, err error) {
	rec, err := s.update(ctx, identity{Account: account}, bucket, func(_ *bucketRecord, tx *indexTxn) error {
		ok, err := tx.del(ctx, key)
		if err != nil || !ok {
			return errors.Join(err, errUnchanged)
		}
		tx.note("delete", key)
		return nil
	})
	if err != nil {
		return "", err
	}
	return rec.Root, nil
}

// FillIndex adds keys to bucket's index at once, each with cid: the
// index and root a bucket of that many PUTs has, without the PUTs.
func FillIndex(ctx context.Context, s *Server, account, bucket string, keys []string, cid string, size int64, tsize uint64) error {
	o := &object{CID: cid, Size: size, TSize: tsize, ETag: "d41d8cd98f00b204e9800998ecf8427e", Modified: s.cfg.Now().UTC().Truncate(time.Second)}
	_, err := s.update(ctx, identity{Account: account}, bucket, func(_ *bucketRecord, tx *indexTxn) error {
		for _, k := range keys {
			if err := tx.put(ctx, k, o); err != nil {
				return err
			}
		}
		tx.note("put", keys[0])
		return nil
	})
	return err
}

// ShardInfo is one shard of a bucket's index.
type ShardInfo struct {
	From, Name string
	Keys       int
}

// IndexOf returns bucket's shards, its keys in order (read from the
// shards), its record's root and the root of building its whole tree
// from those keys again. legacy is whether the record holds its index
// inline (the first version's form).
func IndexOf(ctx context.Context, s *Server, bucket string) (shards []ShardInfo, keys []string, root, rebuilt string, legacy bool, err error) {
	e, err := s.buckets.Get(ctx, bucket)
	if err != nil {
		return nil, nil, "", "", false, err
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		return nil, nil, "", "", false, err
	}
	for _, sh := range rec.Shards {
		shards = append(shards, ShardInfo{From: sh.From, Name: sh.Name, Keys: sh.Keys})
	}
	store := &shardStore{kv: s.shards.kv} // read from the bus, not the cache
	objs := map[string]*object{}
	err = store.view(rec).each(ctx, func(k string, o *object) {
		keys = append(keys, k)
		objs[k] = o
	})
	if err != nil {
		return nil, nil, "", "", false, err
	}
	c, _, err := bucketDAG(objs)
	if err != nil {
		return nil, nil, "", "", false, err
	}
	return shards, keys, rec.Root, c.String(), rec.Objects != nil, nil
}

// MakeLegacy rewrites bucket's record in the first version's form: the
// whole index inline, no shards (which are deleted).
func MakeLegacy(ctx context.Context, s *Server, bucket string) error {
	e, err := s.buckets.Get(ctx, bucket)
	if err != nil {
		return err
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		return err
	}
	objs, err := s.shards.view(rec).all(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, sh := range rec.Shards {
		names = append(names, sh.Name)
	}
	rec.Objects, rec.Shards = objs, nil
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := s.buckets.Update(ctx, bucket, b, e.Revision()); err != nil {
		return err
	}
	return s.shards.drop(ctx, names)
}

// MaxShardKeys is how many keys a shard holds before it is split.
const MaxShardKeys = maxShardKeys

// WriteShard writes a shard of bucket holding key (as a change does
// before its compare-and-set) and names it in no record: what a gateway
// stopped between the two leaves.
func WriteShard(ctx context.Context, s *Server, bucket, key, cid string) (string, error) {
	return s.shards.write(ctx, bucket, map[string]*object{key: {CID: cid, ETag: "d41d8cd98f00b204e9800998ecf8427e"}})
}

// SweepShards runs one pass of the sweep of orphan shards as if at now,
// and returns how many it deleted.
func SweepShards(ctx context.Context, s *Server, now time.Time) (int, error) {
	return s.sweepShards(ctx, now)
}

// ShardGrace is how long a shard no record names is left.
const ShardGrace = shardGrace

// WrapBuckets replaces the s3_buckets bucket s writes records to with
// wrap's; call before s is used.
func WrapBuckets(s *Server, wrap func(jetstream.KeyValue) jetstream.KeyValue) {
	s.buckets = wrap(s.buckets)
}
