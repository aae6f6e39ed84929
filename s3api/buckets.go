package s3api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
)

// MaxHistory is how many of a bucket's roots its record keeps.
const MaxHistory = 100

// maxRecordBytes bounds a bucket's record (gzipped) below the bus's
// message limit. The record lists the shards of the index (index.go),
// a few dozen bytes for every few hundred keys: millions of keys.
const maxRecordBytes = 900 << 10

// bucketRecord is a bucket's value in the s3_buckets bucket (key: its
// name), stored gzipped: owner, current content root, history and the
// shards of its index of keys. Every change is a compare-and-set on it,
// so changes to a bucket are ordered by the bus (last writer wins, per
// key).
type bucketRecord struct {
	Name    string       `json:"name"`
	Account string       `json:"account"`
	Created time.Time    `json:"created"`
	Root    string       `json:"root"`    // the bucket's tree as a UnixFS directory
	Version int          `json:"version"` // counts changes
	History []RootChange `json:"history,omitempty"`
	Shards  []shardRef   `json:"shards,omitempty"` // the index, in key order
	// Objects is the index of a record of the first version, inline: read
	// as it is, rewritten as Shards by the next change.
	Objects map[string]*object `json:"objects,omitempty"`
	Billing billing            `json:"billing"` // storage billed so far (billing.go)
	// Site is the site that follows the bucket (FollowBucket): each new
	// root is deployed to it while its deploy names the bucket.
	Site string `json:"site,omitempty"`

	dag *memDAG // the directory nodes of Root, when a change built them
}

// keys is how many keys the bucket holds.
func (rec *bucketRecord) keys() int {
	if rec.Objects != nil {
		return len(rec.Objects)
	}
	n := 0
	for _, sh := range rec.Shards {
		n += sh.Keys
	}
	return n
}

// size is the bytes its keys hold, as S3 counts them.
func (rec *bucketRecord) size() int64 {
	if rec.Objects != nil {
		return objectsSize(rec.Objects)
	}
	var n int64
	for _, sh := range rec.Shards {
		n += sh.Bytes
	}
	return n
}

// RootChange is one entry of a bucket's root history.
type RootChange struct {
	Version int       `json:"version"`
	Root    string    `json:"root"`
	Time    time.Time `json:"time"`
	Op      string    `json:"op"`            // "create", "put", "copy", "delete"
	Key     string    `json:"key,omitempty"` // the object changed (the first, for a batch)
}

// object is a key's entry in a bucket's index.
type object struct {
	CID         string    `json:"cid"`
	Size        int64     `json:"size"`
	TSize       uint64    `json:"tsize"` // the DAG's cumulative size, for the bucket's directory links
	ETag        string    `json:"etag"`  // hex MD5 of the bytes, as S3's for a single PUT
	Modified    time.Time `json:"modified"`
	ContentType string    `json:"type,omitempty"`

	// siteErr, for a store not yet recorded, is why its bytes do not
	// parse as the site file its key names (sitefiles.go).
	siteErr *siteFileError
}

func encodeRecord(rec *bucketRecord) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(rec); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > maxRecordBytes {
		return nil, ErrInvalidArgument.with("The bucket holds as many keys as this version supports (its record is over %d KiB); delete some or use another bucket.", maxRecordBytes>>10)
	}
	return buf.Bytes(), nil
}

func decodeRecord(b []byte) (*bucketRecord, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("s3api: bucket record: %w", err)
	}
	var rec bucketRecord
	if err := json.NewDecoder(io.LimitReader(zr, 64<<20)).Decode(&rec); err != nil {
		return nil, fmt.Errorf("s3api: bucket record: %w", err)
	}
	return &rec, nil
}

// recordHead reads a record's name, account and creation time: the
// fields its JSON starts with (bucketRecord's order), without
// decompressing or decoding the index that follows. ListBuckets reads
// every bucket's head; it would otherwise decode every account's index.
func recordHead(b []byte) (*bucketRecord, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("s3api: bucket record: %w", err)
	}
	dec := json.NewDecoder(zr)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("s3api: bucket record: not an object")
	}
	var head bucketRecord
	for _, field := range []string{"name", "account", "created"} {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("s3api: bucket record: %w", err)
		}
		if t != field {
			return decodeRecord(b) // another order: read it whole
		}
		var v any = &head.Name
		switch field {
		case "account":
			v = &head.Account
		case "created":
			v = &head.Created
		}
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("s3api: bucket record: %w", err)
		}
	}
	return &head, nil
}

// validBucketName follows S3's rules for new buckets: 3 to 63 of a-z,
// 0-9, '.' and '-', starting and ending with a letter or digit, no "..",
// not an IP address.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' || (i == 0 || i == len(name)-1) && !alnum {
			return false
		}
	}
	dots := strings.Count(name, ".")
	digitsAndDots := strings.Trim(name, "0123456789.") == ""
	return !(dots == 3 && digitsAndDots)
}

// bucket reads a bucket the caller may use: NoSuchBucket, or
// AccessDenied for another account's.
func (s *Server) bucket(ctx context.Context, who identity, name string) (*bucketRecord, error) {
	if !validBucketName(name) {
		return nil, &Error{Code: ErrNoSuchBucket.Code, Status: ErrNoSuchBucket.Status, Message: ErrNoSuchBucket.Message, Resource: name}
	}
	e, err := s.buckets.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, &Error{Code: ErrNoSuchBucket.Code, Status: ErrNoSuchBucket.Status, Message: ErrNoSuchBucket.Message, Resource: name}
	}
	if err != nil {
		return nil, fmt.Errorf("s3api: read bucket: %w", err)
	}
	rec, err := s.records.decode(name, e.Value())
	if err != nil {
		return nil, err
	}
	if rec.Account != who.Account {
		return nil, ErrAccessDenied
	}
	return rec, nil
}

// recordCache keeps the last decoded record of each bucket with the bytes
// it was decoded from: a bucket's index is decoded once per change, not
// once per request. A record it returns is shared: read it, or change a
// clone.
type recordCache struct {
	mu sync.Mutex
	m  map[string]cachedRecord
}

type cachedRecord struct {
	raw []byte
	rec *bucketRecord
}

// maxCachedRecords bounds the cache; past it, it starts over.
const maxCachedRecords = 1024

func (c *recordCache) decode(bucket string, raw []byte) (*bucketRecord, error) {
	c.mu.Lock()
	e, ok := c.m[bucket]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.rec, nil
	}
	rec, err := decodeRecord(raw)
	if err != nil {
		return nil, err
	}
	c.put(bucket, raw, rec)
	return rec, nil
}

func (c *recordCache) put(bucket string, raw []byte, rec *bucketRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedRecords {
		c.m = map[string]cachedRecord{}
	}
	c.m[bucket] = cachedRecord{raw: raw, rec: rec}
}

// clone copies rec so that it can change without changing rec (its
// index changes through an indexTxn).
func (rec *bucketRecord) clone() *bucketRecord {
	c := *rec
	c.Shards = slices.Clone(rec.Shards)
	c.History = slices.Clone(rec.History)
	return &c
}

// maxChangeTime bounds a bucket's change (update), from its first read
// to its compare-and-set: far below shardGrace, so a shard the sweep
// finds named by no record for that long is no change's in flight.
const maxChangeTime = 10 * time.Minute

// errNoBucket leaves an update when the bucket is gone.
var errNoBucket = errors.New("s3api: no such bucket")

// update applies fn to bucket's index with compare-and-set, retried
// when another writer came first: fn sees the latest record each time.
// A change fn notes (indexTxn.note) makes a new root, in the history.
// The shards fn changed are written under new names before the record
// names them, and those they replace deleted after; a write that loses
// the compare-and-set deletes its own. A write whose outcome is not known
// (its answer lost: a timeout, a connection dropped) leaves them: the
// record may name them; if it does not, the sweep of shards no record
// names deletes them (rootcheck.go). A change lasts at most
// maxChangeTime. The bucket must belong to who.
func (s *Server) update(ctx context.Context, who identity, bucket string, fn func(rec *bucketRecord, tx *indexTxn) error) (*bucketRecord, error) {
	// One writer per bucket at a time on this gateway: its writers then
	// never lose a compare-and-set to each other, only to other gateways.
	mu, _ := s.locks.LoadOrStore(bucket, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	ctx, cancel := context.WithTimeout(ctx, maxChangeTime)
	defer cancel()
	var (
		out      *bucketRecord
		raw      []byte
		prev     string // the root before the change
		tree     *treeState
		written  []string // shards the last attempt wrote
		replaced []string // shards they replace
		fnFailed bool     // the last attempt failed before its write
	)
	drop := func(names []string) {
		if err := s.shards.drop(context.WithoutCancel(ctx), names); err != nil {
			s.log.Warn("s3 index shards not deleted", "bucket", bucket, "err", err)
		}
	}
	var err error
	for attempt := 0; ; attempt++ {
		_, err = events.Update(ctx, s.buckets, bucket, func(old []byte) (b []byte, err error) {
			defer func() { fnFailed = err != nil }()
			drop(written) // of an attempt that lost the compare-and-set
			written, replaced, tree = nil, nil, nil
			if old == nil {
				return nil, errNoBucket
			}
			cur, err := s.records.decode(bucket, old)
			if err != nil {
				return nil, err
			}
			if cur.Account != who.Account {
				return nil, ErrAccessDenied
			}
			prev = cur.Root
			rec := cur.clone()
			rec.dag = nil
			tx := s.shards.txn(cur)
			if err := fn(rec, tx); err != nil {
				return nil, err
			}
			if tx.op != "" {
				if tree, err = s.nextRoot(ctx, cur, tx); err != nil {
					return nil, err
				}
				rec.Root, rec.dag = tree.root, tree.ds
				rec.Version++
				rec.History = append(rec.History, RootChange{Version: rec.Version, Root: rec.Root, Time: s.cfg.Now().UTC(), Op: tx.op, Key: tx.key})
				if n := len(rec.History); n > MaxHistory {
					rec.History = slices.Clone(rec.History[n-MaxHistory:])
				}
			}
			rec.Shards, written, replaced, err = tx.finish(ctx, &s.shards)
			if err != nil {
				return nil, err
			}
			rec.Objects = nil
			s.accrue(cur, rec)
			out = rec
			raw, err = encodeRecord(rec)
			return raw, err
		})
		// A shard read was replaced meanwhile: the record moved on.
		if !errors.Is(err, errShardGone) || attempt >= events.MaxUpdateAttempts {
			break
		}
	}
	switch {
	case err == nil:
	case fnFailed || errors.Is(err, events.ErrConflict):
		drop(written) // no record names them: not written, or lost the compare-and-set
	case len(written) > 0:
		s.log.Warn("s3 bucket change: the outcome of its write is unknown; its shards are left, swept if no record names them", "bucket", bucket, "err", err)
	}
	if errors.Is(err, errNoBucket) {
		return nil, &Error{Code: ErrNoSuchBucket.Code, Status: ErrNoSuchBucket.Status, Message: ErrNoSuchBucket.Message, Resource: bucket}
	}
	if err != nil {
		return nil, err
	}
	drop(replaced)
	if tree != nil {
		s.trees.put(bucket, tree)
	}
	if out.Root != prev {
		queued := *out // with its tree, which the cache does not keep
		s.roots.add(&queued)
	}
	out.dag = nil
	s.records.put(bucket, raw, out)
	return out, nil
}

// read runs fn on bucket's record and its index, read again when a
// shard it reads was replaced meanwhile (errShardGone).
func (s *Server) read(ctx context.Context, who identity, bucket string, fn func(rec *bucketRecord, ix *indexView) error) error {
	for attempt := 0; ; attempt++ {
		rec, err := s.bucket(ctx, who, bucket)
		if err != nil {
			return err
		}
		err = fn(rec, s.shards.view(rec))
		if !errors.Is(err, errShardGone) || attempt >= events.MaxUpdateAttempts {
			return err
		}
	}
}

// object reads key's object in bucket: nil when there is none.
func (s *Server) object(ctx context.Context, who identity, bucket, key string) (*bucketRecord, *object, error) {
	var (
		rec *bucketRecord
		o   *object
	)
	err := s.read(ctx, who, bucket, func(r *bucketRecord, ix *indexView) (err error) {
		rec = r
		o, err = ix.get(ctx, key)
		return err
	})
	return rec, o, err
}

// storeRoot hands rec's root (its directory blocks) to the content store
// to be placed near prev (the bucket's previous root), and deployed to
// the site that follows the bucket, if any.
func (s *Server) storeRoot(ctx context.Context, prev string, rec *bucketRecord, follow bool) error {
	ds := rec.dag
	if ds == nil {
		objs, err := s.shards.view(rec).all(ctx)
		if err != nil {
			return err
		}
		root, d, err := bucketDAG(objs)
		if err != nil {
			return err
		}
		if root.String() != rec.Root {
			return fmt.Errorf("s3api: bucket %s: the tree's root is %s, the record's %s", rec.Name, root, rec.Root)
		}
		ds = d
	}
	root, err := cid.Parse(rec.Root)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeDirCAR(&buf, root, ds); err != nil {
		return err
	}
	return s.cfg.Store.StoreRoot(ctx, api.BucketRoot{
		Bucket: rec.Name, Account: rec.Account, Root: rec.Root, Version: rec.Version,
		Label: storeLabel(rec.Name), Near: prev, Site: rec.Site, Follow: follow,
	}, &buf)
}

// BucketAccount returns the account bucket belongs to; ok is false when
// there is no such bucket.
func (s *Server) BucketAccount(ctx context.Context, bucket string) (account string, ok bool, err error) {
	if !validBucketName(bucket) {
		return "", false, nil
	}
	e, err := s.buckets.Get(ctx, bucket)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("s3api: read bucket: %w", err)
	}
	rec, err := recordHead(e.Value())
	if err != nil {
		return "", false, err
	}
	return rec.Account, true, nil
}

// FollowBucket records that site follows bucket, which must belong to
// account (AccessDenied, NoSuchBucket), and stores the bucket's current
// root for the site (control.Control.StoreRoot with Follow). The caller
// checked that site belongs to account.
func (s *Server) FollowBucket(ctx context.Context, bucket, site, account string) error {
	rec, err := s.update(ctx, identity{Account: account}, bucket, func(rec *bucketRecord, tx *indexTxn) error {
		if err := s.checkSiteFiles(ctx, rec, tx); err != nil {
			return err // the site would serve files that do not parse
		}
		rec.Site = site
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.storeRoot(ctx, "", rec, true); err != nil {
		return err
	}
	s.roots.done(bucket, rec.Root)
	return nil
}

func (s *Server) setRootHeaders(w http.ResponseWriter, rec *bucketRecord) {
	w.Header().Set(HeaderRoot, rec.Root)
}

// Response headers naming content.
const (
	// HeaderRoot is the bucket's content root after the request.
	HeaderRoot = "X-Verity-Root"
	// HeaderCID is the object's CID.
	HeaderCID = "X-Verity-Cid"
)

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request, who identity) error {
	lister, err := s.buckets.ListKeys(r.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("s3api: list buckets: %w", err)
	}
	out := listAllMyBucketsResult{Owner: owner(who)}
	if lister != nil {
		defer lister.Stop()
		for name := range lister.Keys() {
			e, err := s.buckets.Get(r.Context(), name)
			if err != nil {
				continue // deleted meanwhile
			}
			head, err := recordHead(e.Value())
			if err != nil || head.Account != who.Account {
				continue
			}
			out.Buckets = append(out.Buckets, bucketXML{Name: head.Name, CreationDate: head.Created.Format(time.RFC3339)})
		}
	}
	slices.SortFunc(out.Buckets, func(a, b bucketXML) int { return strings.Compare(a.Name, b.Name) })
	return writeXML(w, http.StatusOK, &out)
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, who identity, name string) error {
	if !validBucketName(name) {
		return ErrInvalidBucketName.with("The specified bucket is not valid: %q (3 to 63 of a-z, 0-9, '.' and '-').", name)
	}
	body, err := readSmallBody(r, who, 64<<10)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var cfg createBucketConfiguration
		if err := xml.Unmarshal(body, &cfg); err != nil {
			return ErrMalformedXML
		}
	}
	root, err := bucketRoot(nil)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	rec := &bucketRecord{Name: name, Account: who.Account, Created: now, Root: root.String(), Version: 1,
		History: []RootChange{{Version: 1, Root: root.String(), Time: now, Op: "create"}}}
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if _, err := s.buckets.Create(r.Context(), name, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("s3api: create bucket: %w", err)
		}
		if cur, err := s.bucket(r.Context(), who, name); err == nil && cur.Account == who.Account {
			return ErrBucketAlreadyOwnedByYou
		}
		return ErrBucketAlreadyExists
	}
	s.log.Info("s3 bucket created", "bucket", name, "account", who.Account, "key", who.KeyID)
	w.Header().Set("Location", "/"+name)
	s.setRootHeaders(w, rec)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(w http.ResponseWriter, r *http.Request, who identity, name string) error {
	rec, err := s.bucket(r.Context(), who, name)
	if err != nil {
		return err
	}
	if rec.keys() == 0 && s.cfg.Charges != nil {
		// What it held since the last run is owed: charge it before the
		// record that counts it is gone.
		if err := s.bill(r.Context(), name); err != nil {
			return err
		}
	}
	e, err := s.buckets.Get(r.Context(), name)
	if err != nil {
		return fmt.Errorf("s3api: read bucket: %w", err)
	}
	// Empty at the revision deleted, not only when first read: a PUT
	// recorded in between (while billing ran, say) keeps the bucket.
	if cur, err := s.records.decode(name, e.Value()); err != nil || cur.keys() > 0 || rec.keys() > 0 {
		if err != nil {
			return err
		}
		return ErrBucketNotEmpty
	}
	// Only the revision read empty: a PUT that landed since keeps it.
	if err := s.buckets.Delete(r.Context(), name, jetstream.LastRevision(e.Revision())); err != nil {
		return ErrBucketNotEmpty.with("The bucket changed while it was being deleted; it is not empty.")
	}
	s.trees.forget(name)
	s.log.Info("s3 bucket deleted", "bucket", name, "account", who.Account)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) headBucket(w http.ResponseWriter, r *http.Request, who identity, name string) error {
	rec, err := s.bucket(r.Context(), who, name)
	if err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", s.cfg.Region)
	s.setRootHeaders(w, rec)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) bucketLocation(w http.ResponseWriter, r *http.Request, who identity, name string) error {
	if _, err := s.bucket(r.Context(), who, name); err != nil {
		return err
	}
	loc := s.cfg.Region
	if loc == "us-east-1" {
		loc = "" // as S3 answers for us-east-1
	}
	return writeXML(w, http.StatusOK, &locationConstraint{Value: loc})
}

func (s *Server) bucketVersioning(w http.ResponseWriter, r *http.Request, who identity, name string) error {
	if _, err := s.bucket(r.Context(), who, name); err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, &versioningConfiguration{})
}

// root returns the bucket's root as last cached here, or "".
func (c *recordCache) root(bucket string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cr, ok := c.m[bucket]; ok && cr.rec != nil {
		return cr.rec.Root
	}
	return ""
}
