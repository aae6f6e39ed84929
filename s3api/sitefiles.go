package s3api

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/redirects"
)

// A bucket a site follows is published as the site: its root-level
// _headers and _redirects keys are the site's rules, which a deploy
// refuses when they do not parse (the gateway would answer every path,
// or every missing one, of the site with an error). So in a bucket a
// site follows, a PUT, a completed upload or a copy that would store
// such a key that does not parse is refused with InvalidArgument and the
// parser's message, checked against the record it is written to (a
// follow and a store racing each other see each other's change); and a
// site may not start following a bucket whose files do not parse
// (FollowBucket). In a bucket no site follows they are files like any.

// codeSiteFile is control.CodeSiteFile: a follow refused for a site file.
const codeSiteFile = "bad_site_file"

// siteFiles are the keys checked, with their parsers and size bounds.
var siteFiles = map[string]struct {
	max   int
	parse func([]byte) error
}{
	headers.FileName:   {headers.MaxSize, func(b []byte) error { _, err := headers.Parse(b); return err }},
	redirects.FileName: {redirects.MaxSize, func(b []byte) error { _, err := redirects.Parse(b); return err }},
}

// parseSiteFile parses the bytes read from r as key's site file; nil for
// a key that is none.
func parseSiteFile(key string, r io.Reader) error {
	f, ok := siteFiles[key]
	if !ok {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(f.max)+1))
	if err != nil {
		return fmt.Errorf("s3api: read %s: %w", key, err)
	}
	if err := f.parse(b); err != nil {
		return &siteFileError{key: key, err: err}
	}
	return nil
}

// siteFileError is a site file that does not parse.
type siteFileError struct {
	key string
	err error
}

func (e *siteFileError) Error() string { return e.key + ": " + e.err.Error() }
func (e *siteFileError) Unwrap() error { return e.err }

// s3Error is the refusal of a store of e into a followed bucket.
func (e *siteFileError) s3Error() *Error {
	return ErrInvalidArgument.with("A site follows this bucket and %s does not parse: %v", e.key, e.err)
}

// checkStagedSiteFile parses the staged bytes at path when key is a site
// file. It returns a *siteFileError for bytes that do not parse, kept
// with the object (object.siteErr) for publishable.
func checkStagedSiteFile(key, path string) error {
	if _, ok := siteFiles[key]; !ok {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("s3api: %w", err)
	}
	defer f.Close()
	return parseSiteFile(key, f)
}

// publishable refuses storing o under key in rec when a site follows rec
// and o is a site file that does not parse.
func publishable(rec *bucketRecord, o *object) error {
	if rec.Site == "" || o.siteErr == nil {
		return nil
	}
	return o.siteErr.s3Error()
}

// objectSiteErr parses a stored object's bytes as key's site file (a
// copy's source).
func (s *Server) objectSiteErr(ctx context.Context, key string, o *object) (*siteFileError, error) {
	if _, ok := siteFiles[key]; !ok {
		return nil, nil
	}
	rd, err := s.openObject(ctx, o)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	err = parseSiteFile(key, rd)
	if se, ok := err.(*siteFileError); ok {
		return se, nil
	}
	return nil, err
}

// checkSiteFiles refuses a follow of rec whose site files do not parse:
// a *carcheck.Error (codeSiteFile) naming the file, its CID and the
// parser's message, which the control plane answers 422.
func (s *Server) checkSiteFiles(ctx context.Context, rec *bucketRecord, tx *indexTxn) error {
	for key := range siteFiles {
		o, err := tx.get(ctx, key)
		if err != nil {
			return err
		}
		if o == nil {
			continue
		}
		se, err := s.objectSiteErr(ctx, key, o)
		if err != nil {
			return err
		}
		if se != nil {
			return &carcheck.Error{Code: codeSiteFile, CID: o.CID, Detail: fmt.Sprintf("bucket %s: %s", rec.Name, se.Error())}
		}
	}
	return nil
}

// site is the site following bucket in its last record read here, or "".
func (c *recordCache) site(bucket string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cr, ok := c.m[bucket]; ok && cr.rec != nil {
		return cr.rec.Site
	}
	return ""
}
