package s3api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/webfile"
)

// MaxKeyBytes is S3's bound on a key's length.
const MaxKeyBytes = 1024

// storeLabel names a bucket's objects in their placements (the
// site.deployed event's Site): never a valid site name.
func storeLabel(bucket string) string { return "s3_" + strings.ReplaceAll(bucket, ".", "_") }

func checkKey(key string) error {
	if len(key) > MaxKeyBytes {
		return ErrKeyTooLong
	}
	return nil
}

// putObject stages the body, imports it as UnixFS, stores and places its
// CAR, waits until nodes hold it, then records it in the bucket's index
// and root. Nothing is recorded for a body that fails a check, and the
// staged files are removed either way.
func (s *Server) putObject(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := s.bucket(r.Context(), who, bucket); err != nil {
		return err
	}
	size := bodyLength(r, who)
	if size < 0 {
		return ErrMissingContentLength
	}
	cond, err := parseWriteCondition(r)
	if err != nil {
		return err
	}
	// A key the tree cannot hold, or whose precondition fails, is refused
	// before its bytes are stored and placed (and again when it is
	// recorded, against the latest tree).
	if err := s.fits(r.Context(), who, bucket, key, size, cond); err != nil {
		return err
	}
	obj, release, err := s.store(r, who, bucket, key)
	if err != nil {
		return err
	}
	defer release()
	rec, err := s.update(r.Context(), who, bucket, putKey(r.Context(), "put", key, obj, cond))
	if err != nil {
		return err
	}
	if err := s.keep(r.Context(), bucket, obj.CID); err != nil {
		return err
	}
	s.log.Info("s3 object stored", "bucket", bucket, "key", key, "cid", obj.CID, "bytes", obj.Size, "root", rec.Root)
	w.Header().Set("ETag", `"`+obj.ETag+`"`)
	w.Header().Set(HeaderCID, obj.CID)
	s.setRootHeaders(w, rec)
	w.WriteHeader(http.StatusOK)
	return nil
}

// fits checks that key, with size bytes, can join bucket's tree, and
// that cond holds for the object key names now.
func (s *Server) fits(ctx context.Context, who identity, bucket, key string, size int64, cond writeCondition) error {
	return s.read(ctx, who, bucket, func(_ *bucketRecord, ix *indexView) error {
		if err := ix.fits(ctx, key, size); err != nil {
			return err
		}
		if cond.none() {
			return nil
		}
		cur, err := ix.get(ctx, key)
		if err != nil {
			return err
		}
		return cond.check(bucket, key, cur)
	})
}

// ErrPreconditionFailed answers a conditional request whose condition
// does not hold.
var ErrPreconditionFailed = &Error{Code: "PreconditionFailed", Status: http.StatusPreconditionFailed, Message: "At least one of the pre-conditions you specified did not hold"}

// writeCondition is what a conditional write (PutObject,
// CompleteMultipartUpload, CopyObject) asks of the object its key names
// when it is recorded: If-None-Match: * that there is none, If-Match
// that it has that ETag. It is checked in the compare-and-set that
// records the write, so of writers racing on one key only those whose
// condition held of the object they replaced succeed.
type writeCondition struct {
	absent bool   // If-None-Match: *
	match  string // If-Match: an ETag without its quotes, or "*"
}

// parseWriteCondition reads r's If-None-Match and If-Match. Only "*" is
// a write's If-None-Match, as in S3: another value is refused rather
// than ignored, since a client relying on it would overwrite what it
// meant to keep.
func parseWriteCondition(r *http.Request) (writeCondition, error) {
	var c writeCondition
	if v := strings.TrimSpace(r.Header.Get("If-None-Match")); v != "" {
		if v != "*" {
			return c, ErrNotImplemented.with("A write's If-None-Match may only be *.")
		}
		c.absent = true
	}
	c.match = strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
	return c, nil
}

func (c writeCondition) none() bool { return !c.absent && c.match == "" }

// check checks c against cur, the object key names (nil: none).
func (c writeCondition) check(bucket, key string, cur *object) error {
	if c.absent && cur != nil {
		return ErrPreconditionFailed.with("If-None-Match: * and the key %q exists.", clip(key))
	}
	if c.match != "" && cur == nil {
		return &Error{Code: ErrNoSuchKey.Code, Status: ErrNoSuchKey.Status, Message: ErrNoSuchKey.Message, Resource: "/" + bucket + "/" + key}
	}
	if c.match != "" && c.match != "*" && c.match != cur.ETag {
		return ErrPreconditionFailed.with("If-Match names another ETag than the object's.")
	}
	return nil
}

// putKey is the change recording o under key, checked against the
// latest tree and, with cond, the key's latest object.
func putKey(ctx context.Context, op, key string, o *object, cond writeCondition) func(*bucketRecord, *indexTxn) error {
	return func(rec *bucketRecord, tx *indexTxn) error {
		if err := publishable(rec, o); err != nil {
			return err
		}
		if err := tx.fits(ctx, key, o.Size); err != nil {
			return err
		}
		if !cond.none() {
			cur, err := tx.get(ctx, key)
			if err != nil {
				return err
			}
			if err := cond.check(rec.Name, key, cur); err != nil {
				return err
			}
		}
		if err := tx.put(ctx, key, o); err != nil {
			return err
		}
		tx.note(op, key)
		return nil
	}
}

// store reads and checks one object's bytes, then stores them; release
// ends the hold on their CAR (storeFile).
func (s *Server) store(r *http.Request, who identity, bucket, key string) (_ *object, release func(), _ error) {
	f, err := os.CreateTemp(s.uploadsDir(), "object-*")
	if err != nil {
		return nil, nil, fmt.Errorf("s3api: stage: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, sum, err := readBody(r, who, f, s.cfg.MaxObjectBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("s3api: stage: %w", err)
	}
	return s.storeFile(r, bucket, key, f.Name(), n, hex.EncodeToString(sum), r.Header.Get("Content-Type"))
}

// storeFile imports the staged file at path as UnixFS, stores and places
// its CAR, and returns once nodes hold it. The CAR is held in the
// content store (ContentStore.Hold) until the caller calls release,
// once it has answered: if the collector unplaces the same root before
// the object is recorded, Keep places it again from that CAR.
func (s *Server) storeFile(r *http.Request, bucket, key, path string, size int64, etag, ctype string) (_ *object, release func(), _ error) {
	siteErr := checkStagedSiteFile(key, path)
	var se *siteFileError
	if siteErr != nil && !errors.As(siteErr, &se) {
		return nil, nil, siteErr
	}
	if se != nil && s.records.site(bucket) != "" {
		return nil, nil, se.s3Error() // refused before it is stored; checked again as it is recorded
	}
	car, err := os.CreateTemp(s.uploadsDir(), "object-*.car")
	if err != nil {
		return nil, nil, fmt.Errorf("s3api: stage: %w", err)
	}
	defer os.Remove(car.Name())
	defer car.Close()
	root, err := importer.WriteCAR(r.Context(), path, car, importer.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("s3api: import: %w", err)
	}
	tsize, err := dagSize(car, root)
	if err != nil {
		return nil, nil, err
	}
	if _, err := car.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("s3api: stage: %w", err)
	}
	// Not the named result: each error return sets that to nil before
	// the deferred call would run it.
	unhold := s.cfg.Store.Hold(root.String())
	ok := false
	defer func() {
		if !ok {
			unhold()
		}
	}()
	got, err := s.cfg.Store.StoreCAR(r.Context(), storeLabel(bucket), s.records.root(bucket), car)
	if err != nil {
		return nil, nil, fmt.Errorf("s3api: store: %w", err)
	}
	if got != root.String() {
		return nil, nil, fmt.Errorf("s3api: stored root %s, imported %s", got, root)
	}
	if err := s.waitHeld(r.Context(), got); err != nil {
		return nil, nil, err
	}
	if ctype == "" {
		ctype = webfile.ContentType(key)
	}
	ok = true
	return &object{CID: got, Size: size, TSize: tsize, ETag: etag, Modified: s.cfg.Now().UTC().Truncate(time.Second), ContentType: ctype, siteErr: se}, unhold, nil
}

// placeAgain places root again from its CAR (ContentStore.PlaceAgain),
// for content fewer nodes hold than should (its holders failed it, or
// left): waiting alone would wait for holders nothing orders. A failure
// is logged: waitHeld answers the request.
func (s *Server) placeAgain(ctx context.Context, bucket, root string) {
	if err := s.cfg.Store.PlaceAgain(ctx, storeLabel(bucket), s.records.root(bucket), root); err != nil {
		s.log.Warn("s3 object short of holders: not placed again", "bucket", bucket, "cid", root, "err", err)
	}
}

// errNotHeldInTime is the cause waitHeld's own timeout ends its wait with.
var errNotHeldInTime = errors.New("s3api: StoreTimeout passed")

// waitHeld returns once the configured number of live nodes hold root:
// an object is acknowledged only then. Past StoreTimeout it fails with
// ServiceUnavailable and the object is not recorded. When ctx ends first
// (the client went away, the server is stopping) it fails the same way,
// and only StoreTimeout passing is worth a warning.
func (s *Server) waitHeld(ctx context.Context, root string) error {
	wctx, cancel := context.WithTimeoutCause(ctx, s.cfg.StoreTimeout, errNotHeldInTime)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		held, want, err := s.cfg.Store.Holders(wctx, root)
		if err == nil && held >= want {
			return nil
		}
		select {
		case <-wctx.Done():
			if errors.Is(context.Cause(wctx), errNotHeldInTime) {
				s.log.Warn("s3 object not held in time", "cid", root, "held", held, "want", want, "timeout", s.cfg.StoreTimeout, "err", err)
			} else {
				s.log.Debug("s3 object's wait for holders ended", "cid", root, "held", held, "want", want, "cause", context.Cause(ctx))
			}
			return ErrServiceUnavailable
		case <-tick.C:
		}
	}
}

// keep runs once a reference to root is recorded in bucket, before the
// request is acknowledged: the collector's mark on root, if any, is
// cleared, and root placed again if the collector unplaced it before the
// record (coordinator/collect.go), in which case the answer waits until
// nodes hold it again. The object is recorded by then, so this runs to
// its end even when the client goes away (the request's context ends):
// otherwise a sweep that marked root before the record would collect the
// content of a recorded object.
func (s *Server) keep(ctx context.Context, bucket, root string) error {
	ctx = context.WithoutCancel(ctx)
	kctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	again, err := s.cfg.Store.Keep(kctx, storeLabel(bucket), root)
	if err != nil {
		return fmt.Errorf("s3api: keep %s: %w", root, err)
	}
	if again {
		s.log.Warn("s3 object's content was collected as it was recorded: placed again", "bucket", bucket, "cid", root)
		return s.waitHeld(ctx, root)
	}
	return nil
}

// copySource parses x-amz-copy-source: "[/]bucket/key", URL-encoded.
func copySource(v string) (bucket, key string, err error) {
	v, err = url.PathUnescape(strings.TrimPrefix(v, "/"))
	if err != nil {
		return "", "", ErrInvalidArgument.with("x-amz-copy-source is not URL-encoded properly")
	}
	if i := strings.Index(v, "?versionId="); i >= 0 {
		return "", "", ErrNotImplemented.with("Copying a version is not implemented.")
	}
	bucket, key, ok := strings.Cut(v, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", ErrInvalidArgument.with("x-amz-copy-source must be bucket/key")
	}
	return bucket, key, nil
}

// checkCopySource checks the preconditions a copy (CopyObject,
// UploadPartCopy) sets on its source o: x-amz-copy-source-if-match and
// -if-none-match (an ETag, quoted or not, or "*"), -if-unmodified-since
// and -if-modified-since (an HTTP date; one that does not parse is not a
// condition). As in S3 (and RFC 9110 §13.2.2), a date is not checked when
// the ETag condition beside it is given.
func checkCopySource(h http.Header, o *object) error {
	failed := func(what string) error {
		return ErrPreconditionFailed.with("The copy source's %s condition does not hold.", what)
	}
	tagIs := func(v string) bool {
		v = strings.TrimSpace(v)
		return v == "*" || strings.Trim(v, `"`) == o.ETag
	}
	match, noneMatch := h.Get("X-Amz-Copy-Source-If-Match"), h.Get("X-Amz-Copy-Source-If-None-Match")
	if match != "" && !tagIs(match) {
		return failed("x-amz-copy-source-if-match")
	}
	if noneMatch != "" && tagIs(noneMatch) {
		return failed("x-amz-copy-source-if-none-match")
	}
	if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil && match == "" && o.Modified.After(t) {
		return failed("x-amz-copy-source-if-unmodified-since")
	}
	if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil && noneMatch == "" && !o.Modified.After(t) {
		return failed("x-amz-copy-source-if-modified-since")
	}
	return nil
}

// copyObject records the source object's content under another key: the
// same CID, already held by nodes, so no bytes move.
func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	srcBucket, srcKey, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	cond, err := parseWriteCondition(r)
	if err != nil {
		return err
	}
	if _, err := readSmallBody(r, who, 0); err != nil {
		return err
	}
	_, o, err := s.object(r.Context(), who, srcBucket, srcKey)
	if err != nil {
		return err
	}
	if o == nil {
		return &Error{Code: ErrNoSuchKey.Code, Status: ErrNoSuchKey.Status, Message: ErrNoSuchKey.Message, Resource: "/" + srcBucket + "/" + srcKey}
	}
	if err := checkCopySource(r.Header, o); err != nil {
		return err
	}
	cp := *o
	cp.Modified = s.cfg.Now().UTC().Truncate(time.Second)
	if r.Header.Get("X-Amz-Metadata-Directive") == "REPLACE" && r.Header.Get("Content-Type") != "" {
		cp.ContentType = r.Header.Get("Content-Type")
	}
	if cp.siteErr, err = s.objectSiteErr(r.Context(), key, o); err != nil {
		return err
	}
	// Held until answered: Keep may place it again from the CAR.
	defer s.cfg.Store.Hold(cp.CID)()
	if held, want, err := s.cfg.Store.Holders(r.Context(), cp.CID); err != nil || held < want {
		if err == nil {
			s.placeAgain(r.Context(), bucket, cp.CID)
		}
		if err := s.waitHeld(r.Context(), cp.CID); err != nil {
			return err
		}
	}
	rec, err := s.update(r.Context(), who, bucket, putKey(r.Context(), "copy", key, &cp, cond))
	if err != nil {
		return err
	}
	if err := s.keep(r.Context(), bucket, cp.CID); err != nil {
		return err
	}
	w.Header().Set(HeaderCID, cp.CID)
	s.setRootHeaders(w, rec)
	return writeXML(w, http.StatusOK, &copyObjectResult{LastModified: cp.Modified.Format(time.RFC3339), ETag: `"` + cp.ETag + `"`})
}

// getObject answers GET and HEAD, with a single Range.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	rec, o, err := s.object(r.Context(), who, bucket, key)
	if err != nil {
		return err
	}
	if o == nil {
		return &Error{Code: ErrNoSuchKey.Code, Status: ErrNoSuchKey.Status, Message: ErrNoSuchKey.Message, Resource: "/" + bucket + "/" + key}
	}
	if r.Method == http.MethodGet {
		// The owner pays for what is served (meter.go): not on credit.
		if err := s.checkReader(r.Context(), rec.Account); err != nil {
			return err
		}
	}
	etag := `"` + o.ETag + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Last-Modified", o.Modified.Format(http.TimeFormat))
	h.Set("Content-Type", o.ContentType)
	h.Set("Accept-Ranges", "bytes")
	h.Set(HeaderCID, o.CID)
	s.setRootHeaders(w, rec)
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*") {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if im := r.Header.Get("If-Match"); im != "" && im != etag && im != "*" {
		return &Error{Code: "PreconditionFailed", Status: http.StatusPreconditionFailed, Message: "At least one of the pre-conditions you specified did not hold"}
	}
	start, length, status := int64(0), o.Size, http.StatusOK
	if hr := r.Header.Get("Range"); hr != "" && webfile.IfRange(r.Header.Get("If-Range"), etag) {
		rg, err := webfile.ParseRange(hr, o.Size)
		var ue *webfile.UnsatisfiableError
		if errors.As(err, &ue) {
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(o.Size, 10))
			return ErrInvalidRange
		}
		if rg != nil {
			start, length, status = rg.Start, rg.Length(), http.StatusPartialContent
			h.Set("Content-Range", rg.ContentRange(o.Size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rd, err := s.openObject(r.Context(), o)
	if err != nil {
		return err
	}
	defer rd.Close()
	if _, err := rd.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("s3api: seek: %w", err)
	}
	w.WriteHeader(status)
	n, err := io.CopyN(w, rd, length)
	if s.meter != nil {
		s.meter.Add(rec.Account, BillingLabel(bucket), n) // what was sent, also when cut short
	}
	if err != nil {
		// Headers are gone: cut the response so the client sees a short body.
		s.log.Warn("s3 read failed", "bucket", bucket, "key", key, "cid", o.CID, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	if _, err := s.bucket(r.Context(), who, bucket); err != nil {
		return err
	}
	rec, err := s.update(r.Context(), who, bucket, func(_ *bucketRecord, tx *indexTxn) error {
		ok, err := tx.del(r.Context(), key)
		if err != nil {
			return err
		}
		if !ok {
			return errUnchanged
		}
		tx.note("delete", key)
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return err
	}
	if rec != nil {
		s.setRootHeaders(w, rec)
	}
	w.WriteHeader(http.StatusNoContent) // as S3: also for a key that was not there
	return nil
}

// errUnchanged leaves an update that has nothing to change.
var errUnchanged = errors.New("s3api: unchanged")

// maxDeleteObjects is S3's bound on one DeleteObjects request.
const maxDeleteObjects = 1000

func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, who identity, bucket string) error {
	body, err := readSmallBody(r, who, 2<<20)
	if err != nil {
		return err
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteObjects {
		return ErrMalformedXML
	}
	if _, err := s.bucket(r.Context(), who, bucket); err != nil {
		return err
	}
	_, err = s.update(r.Context(), who, bucket, func(_ *bucketRecord, tx *indexTxn) error {
		changed := false
		for _, o := range req.Objects {
			ok, err := tx.del(r.Context(), o.Key)
			if err != nil {
				return err
			}
			changed = changed || ok
		}
		if !changed {
			return errUnchanged
		}
		tx.note("delete", req.Objects[0].Key)
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return err
	}
	out := deleteResult{}
	if !req.Quiet {
		for _, o := range req.Objects {
			out.Deleted = append(out.Deleted, deletedXML{Key: o.Key})
		}
	}
	return writeXML(w, http.StatusOK, &out)
}

// listObjects answers ListObjectsV2 (list-type=2) and ListObjects (V1):
// keys in byte order, after the continuation token, start-after or
// marker; with a delimiter, the keys that have it after the prefix are
// rolled up into CommonPrefixes, each counted once against max-keys.
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, who identity, bucket string) error {
	ctx := r.Context()
	q := r.URL.Query()
	v2 := q.Get("list-type") == "2"
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return ErrInvalidArgument.with("max-keys must be a number ≥ 0")
		}
		maxKeys = min(n, 1000)
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return ErrInvalidArgument.with("Invalid Encoding Method specified in Request")
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	after := q.Get("marker")
	if v2 {
		after = q.Get("start-after")
		if tok := q.Get("continuation-token"); tok != "" {
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return ErrInvalidArgument.with("The continuation token provided is incorrect")
			}
			after = max(after, string(b))
		}
	}
	var (
		res   listBucketResult
		rec   *bucketRecord
		count int
		last  string
	)
	encode := func(s string) string {
		if enc == "url" {
			return url.QueryEscape(s)
		}
		return s
	}
	err := s.read(r.Context(), who, bucket, func(r *bucketRecord, ix *indexView) error {
		rec, count, last = r, 0, ""
		res = listBucketResult{Name: bucket, Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys}
		if enc != "" {
			res.EncodingType = enc
			res.Prefix, res.Delimiter = encode(prefix), encode(delim)
		}
		return list(ctx, ix, prefix, delim, after, maxKeys, func(k string, o *object, cp string) bool {
			if count == maxKeys {
				res.IsTruncated = true
				return false
			}
			count++
			if o == nil {
				res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: encode(cp)})
				last = k
				return true
			}
			c := contentXML{Key: encode(k), LastModified: o.Modified.Format("2006-01-02T15:04:05.000Z"), ETag: `"` + o.ETag + `"`, Size: o.Size, StorageClass: "STANDARD"}
			if !v2 {
				ow := owner(who)
				c.Owner = &ow
			}
			res.Contents = append(res.Contents, c)
			last = k
			return true
		})
	})
	if err != nil {
		return err
	}
	if v2 {
		res.KeyCount = &count
		res.StartAfter = q.Get("start-after")
		res.ContinuationToken = q.Get("continuation-token")
		if res.IsTruncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		}
	} else {
		marker := q.Get("marker")
		res.Marker = &marker
		if res.IsTruncated && delim != "" {
			res.NextMarker = encode(last)
		}
	}
	s.setRootHeaders(w, rec)
	return writeXML(w, http.StatusOK, &res)
}

// list calls fn for the keys of ix after after that start with prefix,
// in order, until fn returns false. With a delimiter, the keys that have
// it after the prefix come as one call per common prefix cp (o nil, k
// the last key with that prefix: where the next page starts).
func list(ctx context.Context, ix *indexView, prefix, delim, after string, maxKeys int, fn func(k string, o *object, cp string) bool) error {
	from := max(after+"\x00", prefix) // the least key > after
	if after == "" {
		from = prefix
	}
	for {
		k, o, ok, err := ix.ceil(ctx, from)
		if err != nil || !ok || !strings.HasPrefix(k, prefix) {
			return err
		}
		if delim != "" {
			if j := strings.Index(k[len(prefix):], delim); j >= 0 {
				cp := k[:len(prefix)+j+len(delim)]
				next, more := successor(cp)
				last := k
				if more {
					if last, _, err = ix.lower(ctx, next); err != nil {
						return err
					}
				} else if last, err = lastKey(ctx, ix); err != nil {
					return err
				}
				if !fn(last, nil, cp) || !more {
					return nil
				}
				from = next
				continue
			}
		}
		if !fn(k, o, "") {
			return nil
		}
		from = k + "\x00"
	}
}

// successor returns the least string greater than every string that
// starts with p; more is false when there is none (p is all 0xff).
func successor(p string) (string, bool) {
	b := []byte(p)
	for len(b) > 0 {
		if b[len(b)-1] < 0xff {
			b[len(b)-1]++
			return string(b), true
		}
		b = b[:len(b)-1]
	}
	return "", false
}

// lastKey returns ix's greatest key.
func lastKey(ctx context.Context, ix *indexView) (string, error) {
	for i := len(ix.shards) - 1; i >= 0; i-- {
		sh, err := ix.load(ctx, i)
		if err != nil {
			return "", err
		}
		if n := len(sh.keys); n > 0 {
			return sh.keys[n-1], nil
		}
	}
	return "", nil
}
