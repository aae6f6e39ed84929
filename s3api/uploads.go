package s3api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Open multipart uploads. Each costs a directory and its staged parts
// on this gateway's disk, so one account may have at most MaxUploads
// open here, and an upload that received no part for UploadExpiry (or,
// with none, was created that long ago) is removed with its parts, as
// an abort would: a part sent to it afterwards is NoSuchUpload. The
// uploads are known from memory, and from the disk when the server
// starts again (recoverUploads): an upload outlives a restart, with the
// parts it had acknowledged.

// ErrTooManyUploads refuses a multipart upload past Config.MaxUploads.
var ErrTooManyUploads = &Error{Code: "InvalidRequest", Status: http.StatusBadRequest, Message: "The account has too many multipart uploads open on this server: complete or abort some (ListMultipartUploads lists them) before creating another."}

// openUploads is what this server knows of its open uploads.
type openUploads struct {
	mu sync.Mutex
	m  map[string]*openUpload // upload id → state
	n  map[string]int         // account → its open uploads
}

type openUpload struct {
	account string
	last    time.Time // created, or its last part began or ended
}

// add records upload id of account, unless account has max open.
func (o *openUploads) add(id, account string, now time.Time, max int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n[account] >= max {
		return ErrTooManyUploads.with("The account has %d multipart uploads open on this server, the most it may: complete or abort one (ListMultipartUploads lists them) before creating another.", o.n[account])
	}
	if o.m == nil {
		o.m, o.n = map[string]*openUpload{}, map[string]int{}
	}
	o.m[id] = &openUpload{account: account, last: now}
	o.n[account]++
	return nil
}

// touch notes activity on upload id.
func (o *openUploads) touch(id string, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u := o.m[id]; u != nil && now.After(u.last) {
		u.last = now
	}
}

// remove forgets upload id (completed, aborted or expired).
func (o *openUploads) remove(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u := o.m[id]; u != nil {
		delete(o.m, id)
		if o.n[u.account]--; o.n[u.account] <= 0 {
			delete(o.n, u.account)
		}
	}
}

// expired removes and returns the uploads idle since before cutoff.
func (o *openUploads) expired(cutoff time.Time) []string {
	o.mu.Lock()
	var ids []string
	for id, u := range o.m {
		if u.last.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	o.mu.Unlock()
	for _, id := range ids {
		o.remove(id)
	}
	return ids
}

// runUploadExpiry removes abandoned uploads until ctx ends, looking
// every fifth of UploadExpiry (at most every minute).
func (s *Server) runUploadExpiry(ctx context.Context) {
	t := time.NewTicker(max(min(s.cfg.UploadExpiry/5, time.Minute), time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range s.uploads.expired(s.cfg.Now().Add(-s.cfg.UploadExpiry)) {
			// Taken first, as Complete takes it: a concurrent part or
			// Complete then finds no upload.
			gone := s.uploadDir(id) + ".expired"
			if err := os.Rename(s.uploadDir(id), gone); err != nil {
				continue // completed or aborted meanwhile
			}
			s.uploadLocks.Delete(id)
			if err := os.RemoveAll(gone); err != nil {
				s.log.Warn("s3 expired upload not removed", "upload", id, "err", err)
				continue
			}
			s.log.Info("s3 multipart upload expired", "upload", id, "idle", s.cfg.UploadExpiry)
		}
	}
}

// recoverUploads takes up the uploads a stopped server left open, with
// the parts it had acknowledged (a part is acknowledged once its file
// and its record are renamed into place), and removes everything else
// staged: PUT bodies, parts cut short, uploads being completed or
// expired when it stopped (their clients were not answered: a Complete
// is sent again and finds NoSuchUpload, as after any failed Complete
// whose upload is gone).
func (s *Server) recoverUploads() {
	entries, err := os.ReadDir(s.uploadsDir())
	if err != nil {
		s.log.Warn("s3 staged uploads not read", "err", err)
		return
	}
	kept := 0
	for _, e := range entries {
		path := filepath.Join(s.uploadsDir(), e.Name())
		id, ok := strings.CutPrefix(e.Name(), "mp-")
		if !ok || !e.IsDir() || !validUploadID(id) || !s.recoverUpload(id) {
			if err := os.RemoveAll(path); err != nil {
				s.log.Warn("s3 staged entry not removed", "path", path, "err", err)
			}
			continue
		}
		kept++
	}
	if kept > 0 {
		s.log.Info("s3 multipart uploads taken up again", "uploads", kept)
	}
}

// recoverUpload takes up upload id's directory: false if it is no
// upload of this server (then removed by the caller).
func (s *Server) recoverUpload(id string) bool {
	dir := s.uploadDir(id)
	b, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if err != nil {
		return false
	}
	var u upload
	if json.Unmarshal(b, &u) != nil || u.ID != id || u.Account == "" || !s.ownUpload(id) {
		return false
	}
	last := u.Created
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		name := n.Name()
		switch {
		case name == "upload.json":
		case strings.HasPrefix(name, "part-") && (strings.HasSuffix(name, ".json") || !strings.Contains(name, ".")):
			if fi, err := n.Info(); err == nil && fi.ModTime().After(last) {
				last = fi.ModTime()
			}
		default: // a part cut short ("incoming-*"), a record half written
			_ = os.RemoveAll(filepath.Join(dir, name))
		}
	}
	// A part file whose record is missing or names another size was cut
	// between its two renames: never acknowledged (or, sent again, its
	// new bytes were not), so dropped, record and all.
	for _, n := range names {
		name := n.Name()
		if !strings.HasPrefix(name, "part-") || strings.Contains(name, ".") {
			continue
		}
		var p part
		rb, err := os.ReadFile(filepath.Join(dir, name+".json"))
		fi, serr := os.Stat(filepath.Join(dir, name))
		if err != nil || serr != nil || json.Unmarshal(rb, &p) != nil || p.Size != fi.Size() {
			_ = os.Remove(filepath.Join(dir, name))
			_ = os.Remove(filepath.Join(dir, name+".json"))
		}
	}
	s.uploads.restore(id, u.Account, last)
	return true
}

// restore records upload id of account, found on disk at start, whatever
// the account's count (it was admitted before).
func (o *openUploads) restore(id, account string, last time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m, o.n = map[string]*openUpload{}, map[string]int{}
	}
	if _, ok := o.m[id]; !ok {
		o.n[account]++
	}
	o.m[id] = &openUpload{account: account, last: last}
}
