package s3api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
)

// References tells the coordinator's collector (coordinator.ReferenceSource)
// which roots S3 buckets still reference: every bucket's current root
// and the CID of every object of its index. It claims the content placed under the
// labels storeLabel gives (s3_<bucket>), which no site name can be. It
// reads the s3_buckets bucket, so a gateway that does not serve the API
// knows the buckets' referents all the same.
//
// A bucket's earlier roots (its history lists the last MaxHistory) are
// not referenced: a placed root keeps its whole tree on its holders, the
// objects' blocks among it, so keeping old roots would keep deleted and
// overwritten content stored, unbilled, until a hundred more changes.
// An earlier root stays readable from nodes for the grace period after
// its bucket moved on; a site that follows the bucket keeps the roots of
// its own history (their placements carry the site's name, which this
// source does not claim).
type References struct {
	kv     jetstream.KeyValue
	shards shardStore
}

// NewReferences reads the buckets from bus, from the leader of each
// bucket's stream (events.LeaderKV): on a replicated bus, a read any
// replica answers could miss an object recorded a moment before the
// collector's last read, and the collector would unplace it. The list of
// buckets and each record are read from the leader; so are the shards a
// record names, though a shard is written once under a new name before
// the record that names it, and never changed: any copy of it holds the
// same keys, and one not found yet reads as replaced (the record is read
// again, and after MaxUpdateAttempts the pass fails and collects
// nothing), so no stale read could hide a key in it.
func NewReferences(bus *events.Bus) (*References, error) {
	kv, err := bus.LeaderKV(events.BucketS3Buckets)
	if err != nil {
		return nil, err
	}
	r := &References{kv: kv}
	if r.shards.kv, err = bus.LeaderKV(events.BucketS3Index); err != nil {
		return nil, err
	}
	return r, nil
}

// Claims reports whether label is a bucket's (storeLabel).
func (r *References) Claims(label string) bool { return strings.HasPrefix(label, "s3_") }

// Referenced returns every root the buckets reference now. A record it
// cannot read fails the whole call: the collector then collects nothing.
func (r *References) Referenced(ctx context.Context) (map[string]bool, error) {
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("s3api: list buckets: %w", err)
	}
	out := map[string]bool{}
	for name := range keys.Keys() {
		if err := r.bucket(ctx, name, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bucket adds what bucket name references to out: its current root and
// its objects, read from one revision of its record. A shard replaced
// since the record was read (errShardGone) means a later revision: the
// record is read again, so what is added is the bucket as it was at a
// read made during the call.
func (r *References) bucket(ctx context.Context, name string, out map[string]bool) error {
	for attempt := 0; ; attempt++ {
		e, err := r.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil // deleted since listed
		}
		if err != nil {
			return fmt.Errorf("s3api: read bucket %s: %w", name, err)
		}
		rec, err := decodeRecord(e.Value())
		if err != nil {
			return fmt.Errorf("s3api: bucket %s: %w", name, err)
		}
		var cids []string
		err = r.shards.view(rec).each(ctx, func(_ string, o *object) { cids = append(cids, o.CID) })
		if errors.Is(err, errShardGone) && attempt < events.MaxUpdateAttempts {
			continue
		}
		if err != nil {
			return fmt.Errorf("s3api: bucket %s: %w", name, err)
		}
		if rec.Root != "" {
			out[rec.Root] = true
		}
		for _, c := range cids {
			out[c] = true
		}
		return nil
	}
}
