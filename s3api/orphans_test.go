package s3api_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/s3api"
)

// A gateway stopped between writing a shard and its compare-and-set
// leaves a shard no record names. The sweep (with the root check) deletes
// one it has found so for the grace period, and leaves a fresh one (it
// may be a change's in flight on another gateway) and every shard a
// record names.
func TestOrphanShardsSwept(t *testing.T) {
	n := ownNetwork(t, devnet.Config{})
	c, _, cid, _ := indexBucket(t, n, "olga", "olga-b")
	putCID(t, c, "olga-b", "second", []byte("second"))
	srv := idleServer(t, n)
	ctx := t.Context()
	named := shardNames(t, n, "olga-b")
	if len(named) == 0 {
		t.Fatal("premise: the bucket has shards")
	}
	old, err := s3api.WriteShard(ctx, srv, "olga-b", "lost", cid)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if got, err := s3api.SweepShards(ctx, srv, t0); err != nil || got != 0 {
		t.Fatalf("first sweep: %d deleted (%v); want none, the orphan just found", got, err)
	}
	fresh, err := s3api.WriteShard(ctx, srv, "olga-b", "lost", cid)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s3api.SweepShards(ctx, srv, t0.Add(s3api.ShardGrace-time.Second)); err != nil || got != 0 {
		t.Fatalf("within the grace: %d deleted (%v)", got, err)
	}
	if got, err := s3api.SweepShards(ctx, srv, t0.Add(s3api.ShardGrace)); err != nil || got != 1 {
		t.Fatalf("after the grace: %d deleted (%v); want the old orphan", got, err)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(named), fresh)))
	if left := shardNames(t, n, "olga-b"); !slices.Equal(left, want) {
		t.Fatalf("shards left %v, want the named ones and the fresh orphan %v (old %s)", left, want, old)
	}
	if got, err := s3api.SweepShards(ctx, srv, t0.Add(2*s3api.ShardGrace)); err != nil || got != 1 {
		t.Fatalf("after the fresh one's grace: %d deleted (%v)", got, err)
	}
	if left := shardNames(t, n, "olga-b"); !slices.Equal(left, named) {
		t.Fatalf("shards left %v, want the named ones %v", left, named)
	}
	// The bucket reads whole.
	checkIndex(t, n, srv, "olga-b", map[string]bool{"seed": true, "second": true})
}

// lostAnswerKV applies a record's compare-and-set and then, when armed,
// answers as if the answer never came (a timeout, a connection lost):
// the writer cannot tell whether the record names its shards.
type lostAnswerKV struct {
	jetstream.KeyValue
	armed atomic.Bool
}

func (kv *lostAnswerKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := kv.KeyValue.Update(ctx, key, value, rev)
	if err == nil && kv.armed.Swap(false) {
		return 0, context.DeadlineExceeded
	}
	return n, err
}

// A change whose compare-and-set was applied but whose answer was lost
// fails, and leaves its shards: the record may name them (here it does),
// and deleting them would leave the bucket's index unreadable. Shards
// that no record names in the end are the sweep's.
func TestChangeWithLostAnswerKeepsItsShards(t *testing.T) {
	n := ownNetwork(t, devnet.Config{}) // the sweep sees every bucket's shards
	_, k, cid, _ := indexBucket(t, n, "pavel", "pavel-b")
	srv := idleServer(t, n)
	lost := &lostAnswerKV{}
	s3api.WrapBuckets(srv, func(kv jetstream.KeyValue) jetstream.KeyValue { lost.KeyValue = kv; return lost })
	ctx := t.Context()
	lost.armed.Store(true)
	if _, err := s3api.PutKey(ctx, srv, k.Account, "pavel-b", "lost-answer", cid, 11, 11); err == nil {
		t.Fatal("the change whose answer was lost succeeded")
	}
	// The shard the change replaced is named by no record now: left by
	// the change (had the write not been applied, the record would name
	// it), deleted by the sweep after the grace.
	if got := len(shardNames(t, n, "pavel-b")); got != 2 {
		t.Fatalf("%d shards on the bus; want the replaced one and the new one", got)
	}
	t0 := time.Now()
	for _, at := range []time.Time{t0, t0.Add(s3api.ShardGrace)} {
		if _, err := s3api.SweepShards(ctx, srv, at); err != nil {
			t.Fatal(err)
		}
	}
	checkIndex(t, n, srv, "pavel-b", map[string]bool{"seed": true, "lost-answer": true})
}
