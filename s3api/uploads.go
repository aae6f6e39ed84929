package s3api

import (
	"context"
	"net/http"
	"os"
	"sync"
	"time"
)

// Open multipart uploads. Each costs a directory and its staged parts
// on this gateway's disk, so one account may have at most MaxUploads
// open here, and an upload that received no part for UploadExpiry (or,
// with none, was created that long ago) is removed with its parts, as
// an abort would: a part sent to it afterwards is NoSuchUpload. The
// uploads are known from memory: staged uploads do not outlive the
// process (New removes them).

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
			if err := os.RemoveAll(gone); err != nil {
				s.log.Warn("s3 expired upload not removed", "upload", id, "err", err)
				continue
			}
			s.log.Info("s3 multipart upload expired", "upload", id, "idle", s.cfg.UploadExpiry)
		}
	}
}
