package s3api

import (
	"bufio"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/keyfile"
)

// Multipart upload. An upload is a directory under the staging
// directory, DataDir/s3-uploads/mp-<id>, holding what it is for
// (upload.json) and each part as it arrived and was checked
// (part-NNNNN, with its MD5 and size in part-NNNNN.json). Complete
// concatenates the parts on disk (a 1 MiB buffer: memory does not grow
// with the object) and stores the result as one PUT does. Parts live on
// the gateway that created the upload; staged uploads are removed when
// it starts again, so an upload a stopped gateway was receiving leaves
// nothing behind, and when abandoned (uploads.go).

// S3's bounds on parts.
const (
	minPartSize = 5 << 20
	maxParts    = 10000
)

// More S3 errors of multipart upload.
var (
	ErrNoSuchUpload     = &Error{Code: "NoSuchUpload", Status: http.StatusNotFound, Message: "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."}
	ErrInvalidPart      = &Error{Code: "InvalidPart", Status: http.StatusBadRequest, Message: "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."}
	ErrInvalidPartOrder = &Error{Code: "InvalidPartOrder", Status: http.StatusBadRequest, Message: "The list of parts was not in ascending order. The parts list must be specified in order by part number."}
	ErrEntityTooSmall   = &Error{Code: "EntityTooSmall", Status: http.StatusBadRequest, Message: "Your proposed upload is smaller than the minimum allowed object size: each part but the last must be at least 5 MiB."}
)

// partHooks are test hooks of a part's commit: staged runs once its
// bytes are in place and before its record is, waiting before the
// commit waits for the upload's lock.
type partHooks struct {
	staged  func(id string, num int)
	waiting func(id string)
}

// upload is what an upload is for (upload.json).
type upload struct {
	ID          string    `json:"id"`
	Bucket      string    `json:"bucket"`
	Key         string    `json:"key"`
	Account     string    `json:"account"`
	ContentType string    `json:"type,omitempty"`
	Created     time.Time `json:"created"`
}

// part is a received part (part-NNNNN.json).
type part struct {
	Number   int       `json:"number"`
	ETag     string    `json:"etag"` // hex MD5
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

func (s *Server) uploadDir(id string) string { return filepath.Join(s.uploadsDir(), "mp-"+id) }

// validUploadID: 32 hex digits, then (since ids carry the server's tag)
// "-" and 12 more.
func validUploadID(id string) bool {
	if owner := uploadOwner(id); owner != "" {
		id = id[:32] + owner
	}
	if len(id) != 32 && len(id) != 44 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// openUpload reads upload id, which must be who's and for bucket/key.
func (s *Server) openUpload(who identity, bucket, key, id string) (*upload, error) {
	if !validUploadID(id) {
		return nil, ErrNoSuchUpload
	}
	b, err := os.ReadFile(filepath.Join(s.uploadDir(id), "upload.json"))
	if err != nil {
		return nil, ErrNoSuchUpload
	}
	var u upload
	if err := json.Unmarshal(b, &u); err != nil || u.Bucket != bucket || u.Key != key {
		return nil, ErrNoSuchUpload
	}
	if u.Account != who.Account {
		return nil, ErrAccessDenied
	}
	return &u, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(path, b, 0o600) // synced, the directory after
}

// syncDir makes the names created or renamed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Server) createMultipart(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.fits(r.Context(), who, bucket, key, 1, writeCondition{}); err != nil {
		return err
	}
	if _, err := readSmallBody(r, who, 0); err != nil {
		return err
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	u := upload{ID: hex.EncodeToString(raw[:]) + "-" + s.tag, Bucket: bucket, Key: key, Account: who.Account,
		ContentType: r.Header.Get("Content-Type"), Created: s.cfg.Now().UTC()}
	if err := s.uploads.add(u.ID, who.Account, u.Created, s.cfg.MaxUploads); err != nil {
		return err
	}
	if err := os.Mkdir(s.uploadDir(u.ID), 0o700); err != nil {
		s.uploads.remove(u.ID)
		return fmt.Errorf("s3api: upload: %w", err)
	}
	err := writeJSONFile(filepath.Join(s.uploadDir(u.ID), "upload.json"), u)
	if err == nil {
		err = syncDir(filepath.Dir(s.uploadDir(u.ID))) // the upload's directory itself
	}
	if err != nil {
		os.RemoveAll(s.uploadDir(u.ID))
		s.uploads.remove(u.ID)
		return fmt.Errorf("s3api: upload: %w", err)
	}
	s.log.Info("s3 multipart upload created", "bucket", bucket, "key", key, "upload", u.ID)
	return writeXML(w, http.StatusOK, &initiateMultipartUploadResult{Bucket: bucket, Key: key, UploadID: u.ID})
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	q := r.URL.Query()
	u, err := s.openUpload(who, bucket, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	num, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || num < 1 || num > maxParts {
		return ErrInvalidArgument.with("Part number must be an integer between 1 and 10000, inclusive")
	}
	var src *copyRange
	if v := r.Header.Get("X-Amz-Copy-Source"); v != "" {
		if src, err = s.partSource(r, who, v); err != nil {
			return err
		}
	} else if bodyLength(r, who) < 0 {
		return ErrMissingContentLength
	}
	// A part arriving keeps the upload from expiring, as does its end.
	s.uploads.touch(u.ID, s.cfg.Now())
	defer func() { s.uploads.touch(u.ID, s.cfg.Now()) }()
	// A part is at most MaxObjectBytes (S3's 5 GiB), and the upload's
	// parts together may not stage more than a multipart object may hold
	// (the other parts, and this one; a part sent again replaces its
	// earlier bytes).
	size := bodyLength(r, who)
	if src != nil {
		size = src.length
	}
	room, err := s.partRoom(u.ID, num)
	if err != nil {
		return err
	}
	if room < 0 || size > room {
		return errMultipartRoom(s.cfg.MaxMultipartBytes)
	}
	if size > s.cfg.MaxObjectBytes {
		return ErrEntityTooLarge.with("A part may be at most %d bytes.", s.cfg.MaxObjectBytes)
	}
	room = min(room, s.cfg.MaxObjectBytes)
	dir := s.uploadDir(u.ID)
	f, err := os.CreateTemp(dir, "incoming-*")
	if err != nil {
		return ErrNoSuchUpload // aborted or completed meanwhile
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var n int64
	var sum []byte
	if src != nil {
		n, sum, err = s.copyPart(r, src, f)
	} else {
		n, sum, err = readBody(r, who, f, room)
	}
	if err != nil {
		return err
	}
	// The part is acknowledged durable: its bytes reach the disk before
	// its name and record do (writeJSONFile syncs the directory after).
	if err := f.Sync(); err != nil {
		return fmt.Errorf("s3api: part: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("s3api: part: %w", err)
	}
	name := filepath.Join(dir, fmt.Sprintf("part-%05d", num))
	p := part{Number: num, ETag: hex.EncodeToString(sum), Size: n, Modified: s.cfg.Now().UTC()}
	// The bytes and their record are put in place under the upload's
	// lock: two sendings of one part at once would otherwise leave the
	// bytes of one with the record of the other, and Complete, taking the
	// upload between the two, the new bytes with the old record; either
	// way an object whose bytes are not those of the ETags it was
	// completed with.
	unlock := s.lockUpload(u.ID)
	defer unlock()
	// The room again, now that no other part can be put in place: parts
	// sent at once each passed the check above before any was recorded.
	if err := s.checkRoom(u.ID, num, n); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return ErrNoSuchUpload
	}
	if s.partHooks.staged != nil {
		s.partHooks.staged(u.ID, num)
	}
	if err := writeJSONFile(name+".json", p); err != nil {
		// Bytes without their record are no part: not the bytes of the
		// record before.
		_ = os.Remove(name)
		_ = os.Remove(name + ".json")
		return ErrNoSuchUpload
	}
	unlock()
	if src != nil {
		return writeXML(w, http.StatusOK, &copyPartResult{LastModified: p.Modified.Format(time.RFC3339), ETag: `"` + p.ETag + `"`})
	}
	w.Header().Set("ETag", `"`+p.ETag+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

// partRoom is how many bytes part num of upload id may hold: what the
// upload's other parts leave of MaxMultipartBytes (negative when they
// exceed it).
func (s *Server) partRoom(id string, num int) (int64, error) {
	room := s.cfg.MaxMultipartBytes
	have, err := s.parts(id)
	if err != nil {
		return 0, err
	}
	for _, p := range have {
		if p.Number != num {
			room -= p.Size
		}
	}
	return room, nil
}

// checkRoom refuses part num of upload id holding n bytes when the
// upload's other parts leave less room. The upload's lock is held.
func (s *Server) checkRoom(id string, num int, n int64) error {
	room, err := s.partRoom(id, num)
	if err != nil {
		return err
	}
	if n > room {
		return errMultipartRoom(s.cfg.MaxMultipartBytes)
	}
	return nil
}

func errMultipartRoom(limit int64) error {
	return ErrEntityTooLarge.with("The upload's parts together would exceed the largest object a multipart upload may make (%d bytes).", limit)
}

// lockUpload takes upload id's lock (uploadLocks) and returns its
// release, which may be called more than once.
func (s *Server) lockUpload(id string) (unlock func()) {
	if s.partHooks.waiting != nil {
		s.partHooks.waiting(id)
	}
	m, _ := s.uploadLocks.LoadOrStore(id, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	var once sync.Once
	return func() { once.Do(mu.Unlock) }
}

// copyRange is the source of UploadPartCopy: bytes of an object.
type copyRange struct {
	obj           *object
	start, length int64
}

// partSource reads UploadPartCopy's source: x-amz-copy-source (an
// object of the caller's), x-amz-copy-source-range (bytes=first-last,
// inclusive; default the whole object) and the source's preconditions.
// The request carries no body.
func (s *Server) partSource(r *http.Request, who identity, v string) (*copyRange, error) {
	srcBucket, srcKey, err := copySource(v)
	if err != nil {
		return nil, err
	}
	if _, err := readSmallBody(r, who, 0); err != nil {
		return nil, err
	}
	_, o, err := s.object(r.Context(), who, srcBucket, srcKey)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, &Error{Code: ErrNoSuchKey.Code, Status: ErrNoSuchKey.Status, Message: ErrNoSuchKey.Message, Resource: "/" + srcBucket + "/" + srcKey}
	}
	if err := checkCopySource(r.Header, o); err != nil {
		return nil, err
	}
	c := &copyRange{obj: o, length: o.Size}
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		first, last, ok := parseCopyRange(v)
		if !ok {
			return nil, ErrInvalidArgument.with("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		if last >= o.Size {
			return nil, ErrInvalidRange.with("The specified copy range is beyond the source object's %d bytes.", o.Size)
		}
		c.start, c.length = first, last-first+1
	}
	return c, nil
}

// parseCopyRange parses "bytes=first-last", first ≤ last.
func parseCopyRange(v string) (first, last int64, ok bool) {
	v, ok = strings.CutPrefix(v, "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	return first, last, true
}

// copyPart writes the source's bytes to dst: their count and MD5.
func (s *Server) copyPart(r *http.Request, c *copyRange, dst io.Writer) (int64, []byte, error) {
	rd, err := s.openObject(r.Context(), c.obj)
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	if _, err := rd.Seek(c.start, io.SeekStart); err != nil {
		return 0, nil, fmt.Errorf("s3api: copy part: %w", err)
	}
	h := md5.New()
	n, err := io.CopyN(io.MultiWriter(dst, h), rd, c.length)
	if err != nil {
		return n, nil, fmt.Errorf("s3api: copy part: %w", err)
	}
	return n, h.Sum(nil), nil
}

// parts lists an upload's received parts, by number.
func (s *Server) parts(id string) ([]part, error) {
	names, err := filepath.Glob(filepath.Join(s.uploadDir(id), "part-*.json"))
	if err != nil {
		return nil, err
	}
	var out []part
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // a part replaced meanwhile
		}
		var p part
		if json.Unmarshal(b, &p) == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b part) int { return a.Number - b.Number })
	return out, nil
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	u, err := s.openUpload(who, bucket, key, r.URL.Query().Get("uploadId"))
	if err != nil {
		return err
	}
	ps, err := s.parts(u.ID)
	if err != nil {
		return err
	}
	after, _ := strconv.Atoi(r.URL.Query().Get("part-number-marker"))
	maxParts := 1000
	if v, err := strconv.Atoi(r.URL.Query().Get("max-parts")); err == nil && v >= 0 && v < maxParts {
		maxParts = v
	}
	res := listPartsResult{Bucket: bucket, Key: key, UploadID: u.ID, PartNumberMarker: after, MaxParts: maxParts, StorageClass: "STANDARD"}
	for _, p := range ps {
		if p.Number <= after {
			continue
		}
		if len(res.Parts) == maxParts {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, partXML{PartNumber: p.Number, ETag: `"` + p.ETag + `"`, Size: p.Size, LastModified: p.Modified.Format(time.RFC3339)})
		res.NextPartNumberMarker = p.Number
	}
	return writeXML(w, http.StatusOK, &res)
}

func (s *Server) abortMultipart(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	u, err := s.openUpload(who, bucket, key, r.URL.Query().Get("uploadId"))
	if err != nil {
		return err
	}
	if err := os.RemoveAll(s.uploadDir(u.ID)); err != nil {
		return fmt.Errorf("s3api: abort: %w", err)
	}
	s.uploads.remove(u.ID)
	s.uploadLocks.Delete(u.ID)
	s.log.Info("s3 multipart upload aborted", "bucket", bucket, "key", key, "upload", u.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// completeMultipart checks the parts named against those received,
// joins them into one file and stores it as a PUT does; the upload is
// gone afterwards, whatever the outcome of storing.
func (s *Server) completeMultipart(w http.ResponseWriter, r *http.Request, who identity, bucket, key string) error {
	u, err := s.openUpload(who, bucket, key, r.URL.Query().Get("uploadId"))
	if err != nil {
		return err
	}
	cond, err := parseWriteCondition(r)
	if err != nil {
		return err
	}
	body, err := readSmallBody(r, who, 2<<20)
	if err != nil {
		return err
	}
	var req completeMultipartUpload
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > maxParts {
		return ErrMalformedXML
	}
	// A precondition that fails now leaves the upload as it is (it is
	// checked again as the object is recorded).
	if !cond.none() {
		if err := s.fits(r.Context(), who, bucket, key, 0, cond); err != nil {
			return err
		}
	}
	// The parts are read, checked and the upload taken under its lock, so
	// that no part is committed in between.
	unlock := s.lockUpload(u.ID)
	defer unlock()
	have, err := s.parts(u.ID)
	if err != nil {
		return err
	}
	byNum := map[int]part{}
	for _, p := range have {
		byNum[p.Number] = p
	}
	var chosen []part
	for i, rp := range req.Parts {
		if i > 0 && rp.PartNumber <= req.Parts[i-1].PartNumber {
			return ErrInvalidPartOrder
		}
		p, ok := byNum[rp.PartNumber]
		if !ok || strings.Trim(rp.ETag, `"`) != p.ETag {
			return ErrInvalidPart
		}
		if i < len(req.Parts)-1 && p.Size < minPartSize {
			return ErrEntityTooSmall
		}
		chosen = append(chosen, p)
	}
	// Taken: a concurrent Complete or Abort of this upload, or a part
	// sent to it, now fails.
	taken := s.uploadDir(u.ID) + ".completing"
	if err := os.Rename(s.uploadDir(u.ID), taken); err != nil {
		return ErrNoSuchUpload
	}
	unlock()
	s.uploads.remove(u.ID)
	s.uploadLocks.Delete(u.ID)
	defer os.RemoveAll(taken)
	joined := filepath.Join(taken, "object")
	etags := md5.New()
	var total int64
	if err := func() error {
		out, err := os.Create(joined)
		if err != nil {
			return err
		}
		defer out.Close()
		bw := bufio.NewWriterSize(out, 1<<20)
		for _, p := range chosen {
			in, err := os.Open(filepath.Join(taken, fmt.Sprintf("part-%05d", p.Number)))
			if err != nil {
				return err
			}
			n, err := io.Copy(bw, in)
			in.Close()
			if err != nil {
				return err
			}
			if n != p.Size {
				return errors.New("a part changed size")
			}
			total += n
			sum, _ := hex.DecodeString(p.ETag)
			etags.Write(sum)
			_ = os.Remove(filepath.Join(taken, fmt.Sprintf("part-%05d", p.Number)))
		}
		return bw.Flush()
	}(); err != nil {
		return fmt.Errorf("s3api: join parts: %w", err)
	}
	if total > s.cfg.MaxMultipartBytes {
		return ErrEntityTooLarge
	}
	if err := s.fits(r.Context(), who, bucket, key, total, cond); err != nil {
		return err
	}
	etag := hex.EncodeToString(etags.Sum(nil)) + "-" + strconv.Itoa(len(chosen))
	obj, release, err := s.storeFile(r, bucket, key, joined, total, etag, u.ContentType)
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
	s.log.Info("s3 multipart object stored", "bucket", bucket, "key", key, "cid", obj.CID, "bytes", obj.Size, "parts", len(chosen), "root", rec.Root)
	w.Header().Set(HeaderCID, obj.CID)
	s.setRootHeaders(w, rec)
	return writeXML(w, http.StatusOK, &completeMultipartUploadResult{Location: "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: `"` + etag + `"`})
}

// listMultipartUploads lists the bucket's uploads in progress on the
// cluster's gateways (this one's, and those the others answer with).
func (s *Server) listMultipartUploads(w http.ResponseWriter, r *http.Request, who identity, bucket string) error {
	if _, err := s.bucket(r.Context(), who, bucket); err != nil {
		return err
	}
	res := listMultipartUploadsResult{Bucket: bucket, MaxUploads: 1000}
	dirs, _ := filepath.Glob(filepath.Join(s.uploadsDir(), "mp-*"))
	prefix := r.URL.Query().Get("prefix")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "upload.json"))
		if err != nil {
			continue
		}
		var u upload
		if json.Unmarshal(b, &u) != nil || u.Bucket != bucket || u.Account != who.Account || !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		if len(res.Uploads) == res.MaxUploads {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, uploadXML{Key: u.Key, UploadID: u.ID, Initiated: u.Created.Format(time.RFC3339), StorageClass: "STANDARD"})
	}
	res.Uploads = append(res.Uploads, s.peerUploads(r)...)
	slices.SortFunc(res.Uploads, func(a, b uploadXML) int { return strings.Compare(a.Key+a.UploadID, b.Key+b.UploadID) })
	if len(res.Uploads) > res.MaxUploads {
		res.Uploads, res.IsTruncated = res.Uploads[:res.MaxUploads], true
	}
	return writeXML(w, http.StatusOK, &res)
}
