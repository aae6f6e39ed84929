package s3api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// A bucket's index of keys is split in shards of sorted key ranges, each
// a value of its own in the bus's s3_index bucket, named by the bucket's
// record (shardRef). A shard is written once, under a new name, and
// never changed: a change writes the shards it changed under new names,
// then moves the record to them with a compare-and-set; the record is
// still what orders a bucket's changes. A shard past maxShardKeys keys
// (or maxShardBytes) is split in two; one left with fewer than
// minShardKeys joins a neighbour when they fit together. So a change
// reads and writes one shard of at most a few hundred keys and a record
// that lists the shards, whatever the number of keys.
//
// A reader that finds a shard gone (replaced since it read the record)
// reads the record again (errShardGone). Records of the first version
// hold the index inline (Objects): they are read as one shard, and the
// first change rewrites them as shards (migration on write).

const (
	maxShardKeys  = 512
	maxShardBytes = 256 << 10 // the shard's JSON, before gzip
	minShardKeys  = 64
)

// shardRef is one shard of a bucket's index in its record.
type shardRef struct {
	// From is the least key the shard may hold: it holds the keys from
	// From up to the next shard's From. The first shard's is "".
	From  string `json:"from"`
	Name  string `json:"name"`  // its key in s3_index
	Keys  int    `json:"keys"`  // how many keys it holds
	Bytes int64  `json:"bytes"` // their objects' sizes
}

// shard is a decoded shard: never changed once decoded (a change copies
// objs).
type shard struct {
	objs map[string]*object
	keys []string // sorted
}

type shardJSON struct {
	Objects map[string]*object `json:"objects"`
}

func newShard(objs map[string]*object) *shard {
	return &shard{objs: objs, keys: slices.Sorted(maps.Keys(objs))}
}

func encodeShard(objs map[string]*object) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(shardJSON{Objects: objs}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeShard(b []byte) (*shard, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("s3api: index shard: %w", err)
	}
	var v shardJSON
	if err := json.NewDecoder(io.LimitReader(zr, 16<<20)).Decode(&v); err != nil {
		return nil, fmt.Errorf("s3api: index shard: %w", err)
	}
	if v.Objects == nil {
		v.Objects = map[string]*object{}
	}
	return newShard(v.Objects), nil
}

// errShardGone is a shard named by a record read earlier that a later
// change replaced: read the record again.
var errShardGone = errors.New("s3api: index shard replaced")

// shardStore reads and writes shards, keeping the last ones read (a
// shard never changes under its name).
type shardStore struct {
	kv jetstream.KeyValue
	mu sync.Mutex
	m  map[string]*shard
}

// maxCachedShards bounds the cache (a shard is at most a few hundred
// keys); past it, it starts over.
const maxCachedShards = 512

func (st *shardStore) load(ctx context.Context, name string) (*shard, error) {
	st.mu.Lock()
	sh, ok := st.m[name]
	st.mu.Unlock()
	if ok {
		return sh, nil
	}
	e, err := st.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errShardGone
	}
	if err != nil {
		return nil, fmt.Errorf("s3api: read index shard: %w", err)
	}
	sh, err = decodeShard(e.Value())
	if err != nil {
		return nil, err
	}
	st.keep(name, sh)
	return sh, nil
}

func (st *shardStore) keep(name string, sh *shard) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil || len(st.m) >= maxCachedShards {
		st.m = map[string]*shard{}
	}
	st.m[name] = sh
}

// write stores objs as a new shard of bucket and returns its name.
func (st *shardStore) write(ctx context.Context, bucket string, objs map[string]*object) (string, error) {
	b, err := encodeShard(objs)
	if err != nil {
		return "", err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := bucket + "/" + hex.EncodeToString(id[:])
	if _, err := st.kv.Create(ctx, name, b); err != nil {
		return "", fmt.Errorf("s3api: write index shard: %w", err)
	}
	st.keep(name, newShard(objs))
	return name, nil
}

// drop deletes shards no record names (any more). A failure leaves
// garbage on the bus, never a missing key: it is only logged by callers.
func (st *shardStore) drop(ctx context.Context, names []string) error {
	var first error
	for _, n := range names {
		if err := st.kv.Delete(ctx, n); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && first == nil {
			first = err
		}
		st.mu.Lock()
		delete(st.m, n)
		st.mu.Unlock()
	}
	return first
}

// indexView reads the index of one record.
type indexView struct {
	st     *shardStore
	shards []shardRef
	legacy *shard // a first-version record's inline index
}

func (st *shardStore) view(rec *bucketRecord) *indexView {
	v := &indexView{st: st, shards: rec.Shards}
	if rec.Objects != nil {
		v.legacy = newShard(rec.Objects)
		v.shards = []shardRef{{Keys: len(rec.Objects)}}
	}
	return v
}

func (v *indexView) load(ctx context.Context, i int) (*shard, error) {
	if v.legacy != nil {
		return v.legacy, nil
	}
	if v.shards[i].Name == "" {
		return newShard(nil), nil // a shard a change is making
	}
	return v.st.load(ctx, v.shards[i].Name)
}

// find returns the shard that holds k (-1 when there is none).
func (v *indexView) find(k string) int {
	return sort.Search(len(v.shards), func(i int) bool { return v.shards[i].From > k }) - 1
}

// get returns key's object, or nil.
func (v *indexView) get(ctx context.Context, key string) (*object, error) {
	i := v.find(key)
	if i < 0 {
		return nil, nil
	}
	sh, err := v.load(ctx, i)
	if err != nil {
		return nil, err
	}
	return sh.objs[key], nil
}

// ceil returns the least key ≥ k.
func (v *indexView) ceil(ctx context.Context, k string) (string, *object, bool, error) {
	for i := max(v.find(k), 0); i < len(v.shards); i++ {
		sh, err := v.load(ctx, i)
		if err != nil {
			return "", nil, false, err
		}
		if j, _ := slices.BinarySearch(sh.keys, k); j < len(sh.keys) {
			return sh.keys[j], sh.objs[sh.keys[j]], true, nil
		}
	}
	return "", nil, false, nil
}

// lower returns the greatest key < k.
func (v *indexView) lower(ctx context.Context, k string) (string, bool, error) {
	i := v.find(k)
	if i >= len(v.shards) {
		i = len(v.shards) - 1
	}
	for ; i >= 0; i-- {
		sh, err := v.load(ctx, i)
		if err != nil {
			return "", false, err
		}
		if j, _ := slices.BinarySearch(sh.keys, k); j > 0 {
			return sh.keys[j-1], true, nil
		}
	}
	return "", false, nil
}

// each calls fn for every key, in order.
func (v *indexView) each(ctx context.Context, fn func(k string, o *object)) error {
	for i := range v.shards {
		sh, err := v.load(ctx, i)
		if err != nil {
			return err
		}
		for _, k := range sh.keys {
			fn(k, sh.objs[k])
		}
	}
	return nil
}

// all returns the whole index.
func (v *indexView) all(ctx context.Context) (map[string]*object, error) {
	out := map[string]*object{}
	err := v.each(ctx, func(k string, o *object) { out[k] = o })
	return out, err
}

// fits checks that key, with size bytes, can join the tree of the
// index: a path of non-empty segments, not "." or "..", no prefix of it
// a file, not itself a directory of other keys, a folder marker without
// bytes. The messages are the tree's (buildTree).
func (v *indexView) fits(ctx context.Context, key string, size int64) error {
	marker := strings.HasSuffix(key, "/")
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return keyError(key, "a key's path segments must not be empty, \".\" or \"..\"")
		}
	}
	for i := 1; i <= len(segs); i++ {
		if i == len(segs) && !marker {
			break
		}
		o, err := v.get(ctx, strings.Join(segs[:i], "/"))
		if err != nil {
			return err
		}
		if o != nil {
			return keyError(key, "it makes a directory where another key is a file")
		}
	}
	if !marker {
		k, _, ok, err := v.ceil(ctx, key+"/")
		if err != nil {
			return err
		}
		if ok && strings.HasPrefix(k, key+"/") {
			return keyError(key, "it names a file where other keys make a directory")
		}
	}
	if marker && size != 0 {
		return keyError(key, "a key ending in \"/\" is a folder and holds no bytes")
	}
	return nil
}

// indexTxn is one change to a record's index: the keys it puts and
// deletes, in order, then written as new shards by finish.
type indexTxn struct {
	view    *indexView
	bucket  string
	mod     map[int]map[string]*object // shard → its objects after the change
	changes []treeChange
	op, key string // what the change is, for the history: set by note
}

// treeChange is a key put (obj) or deleted (nil).
type treeChange struct {
	key string
	obj *object
}

func (st *shardStore) txn(rec *bucketRecord) *indexTxn {
	tx := &indexTxn{view: st.view(rec), bucket: rec.Name, mod: map[int]map[string]*object{}}
	if tx.view.legacy != nil {
		tx.mod[0] = maps.Clone(rec.Objects) // rewritten as shards
	}
	return tx
}

func (tx *indexTxn) objects(ctx context.Context, key string, write bool) (map[string]*object, error) {
	i := tx.view.find(key)
	if i < 0 {
		if len(tx.view.shards) > 0 {
			return nil, fmt.Errorf("s3api: index of %s: no shard for %q", tx.bucket, key)
		}
		if !write {
			return nil, nil // an empty index
		}
		// No shard yet: the first.
		tx.view.shards = []shardRef{{}}
		i = 0
	}
	if m, ok := tx.mod[i]; ok {
		return m, nil
	}
	var m map[string]*object
	if tx.view.shards[i].Name != "" {
		sh, err := tx.view.load(ctx, i)
		if err != nil {
			return nil, err
		}
		m = sh.objs
	}
	if !write {
		return m, nil
	}
	m = maps.Clone(m)
	if m == nil {
		m = map[string]*object{}
	}
	tx.mod[i] = m
	return m, nil
}

// get returns key's object as the change left it, or nil.
func (tx *indexTxn) get(ctx context.Context, key string) (*object, error) {
	m, err := tx.objects(ctx, key, false)
	if err != nil || m == nil {
		return nil, err
	}
	return m[key], nil
}

// fits checks key against the index before the change (indexView.fits).
func (tx *indexTxn) fits(ctx context.Context, key string, size int64) error {
	return tx.view.fits(ctx, key, size)
}

func (tx *indexTxn) put(ctx context.Context, key string, o *object) error {
	m, err := tx.objects(ctx, key, true)
	if err != nil {
		return err
	}
	m[key] = o
	tx.changes = append(tx.changes, treeChange{key: key, obj: o})
	return nil
}

// del deletes key; ok is false when it was not there.
func (tx *indexTxn) del(ctx context.Context, key string) (bool, error) {
	if o, err := tx.get(ctx, key); err != nil || o == nil {
		return false, err
	}
	m, err := tx.objects(ctx, key, true)
	if err != nil {
		return false, err
	}
	delete(m, key)
	tx.changes = append(tx.changes, treeChange{key: key})
	return true, nil
}

// note names the change in the bucket's history and makes it a new root.
func (tx *indexTxn) note(op, key string) { tx.op, tx.key = op, key }

// estimate is about what o takes in a shard's JSON.
func estimate(k string, o *object) int { return 2*len(k) + len(o.ContentType) + len(o.CID) + 160 }

// finish writes the changed shards under new names (split or joined as
// their sizes ask) and returns the record's new list of shards, the
// names written, and the names it replaces (to delete once the record
// names the new list).
func (tx *indexTxn) finish(ctx context.Context, st *shardStore) (out []shardRef, written, replaced []string, err error) {
	defer func() {
		if err != nil {
			_ = st.drop(context.WithoutCancel(ctx), written)
			written = nil
		}
	}()
	if len(tx.mod) == 0 {
		return tx.view.shards, nil, nil, nil
	}
	type piece struct {
		ref  shardRef
		objs map[string]*object // nil: unchanged, not loaded
	}
	var pieces []piece
	for i, ref := range tx.view.shards {
		m, ok := tx.mod[i]
		if !ok {
			pieces = append(pieces, piece{ref: ref})
			continue
		}
		if ref.Name != "" {
			replaced = append(replaced, ref.Name)
		}
		keys := slices.Sorted(maps.Keys(m))
		// Cut into pieces of at most half the bounds when past them.
		size := 0
		for _, k := range keys {
			size += estimate(k, m[k])
		}
		cut := len(keys) > maxShardKeys || size > maxShardBytes
		from, start, bytes := ref.From, 0, 0
		for j, k := range keys {
			bytes += estimate(k, m[k])
			end := j == len(keys)-1
			if !end && cut && (j+1-start >= maxShardKeys/2 || bytes >= maxShardBytes/2) {
				end = true
			}
			if !end {
				continue
			}
			p := piece{ref: shardRef{From: from}, objs: map[string]*object{}}
			for _, kk := range keys[start : j+1] {
				p.objs[kk] = m[kk]
			}
			pieces = append(pieces, p)
			if j+1 < len(keys) {
				from = separator(k, keys[j+1])
			}
			start, bytes = j+1, 0
		}
	}
	// Join a small changed piece with its next neighbour when they fit
	// in half a shard (the previous one for the last).
	for i := 0; i < len(pieces); i++ {
		p := pieces[i]
		if p.objs == nil || len(p.objs) >= minShardKeys || len(pieces) < 2 {
			continue
		}
		j := i + 1
		if j == len(pieces) {
			j = i - 1
		}
		q := pieces[j]
		qn := q.ref.Keys
		if q.objs != nil {
			qn = len(q.objs)
		}
		if len(p.objs)+qn > maxShardKeys/2 {
			continue
		}
		if q.objs == nil {
			sh, err := st.load(ctx, q.ref.Name)
			if err != nil {
				return nil, nil, replaced, err
			}
			q.objs = sh.objs
			replaced = append(replaced, q.ref.Name)
		}
		joined := maps.Clone(q.objs)
		maps.Copy(joined, p.objs)
		lo := min(i, j)
		pieces[lo] = piece{ref: shardRef{From: pieces[lo].ref.From}, objs: joined}
		pieces = slices.Delete(pieces, lo+1, lo+2)
		i = lo
	}
	for _, p := range pieces {
		if p.objs == nil {
			out = append(out, p.ref)
			continue
		}
		if len(p.objs) == 0 {
			continue // the range joins the previous shard's
		}
		name, err := st.write(ctx, tx.bucket, p.objs)
		if err != nil {
			return nil, written, replaced, err
		}
		written = append(written, name)
		ref := shardRef{From: p.ref.From, Name: name, Keys: len(p.objs)}
		for _, o := range p.objs {
			ref.Bytes += o.Size
		}
		out = append(out, ref)
	}
	if len(out) > 0 {
		out[0].From = ""
	}
	return out, written, replaced, nil
}

// separator returns the shortest s with a < s ≤ b (a < b): the bound
// between two shards, kept short in the record.
func separator(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return b[:min(i+1, len(b))]
}
