package wasmclient

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/webfile"
)

// Resolved is what a path resolves to under the current site root.
type Resolved struct {
	Root        string // the session's site root
	Stale       bool   // that session may be out of date (Response.Stale)
	CID         string // the file's CID, as its ETag names it (unquoted)
	ContentType string // as Fetch would send it
}

// Resolve finds the CID path names under the current site root without
// fetching the file: it fetches and verifies the parent directory (its
// blocks only, once per directory and root) and looks the name up there. The
// worker's cache uses it after a deploy to tell which cached files are still
// current. It returns ErrNotFound when the directory has no such entry (or
// the path's parent is not a directory).
func (c *Client) Resolve(ctx context.Context, path string) (Resolved, error) {
	segs, dir, err := webfile.SplitPath(path)
	if err != nil {
		return Resolved{}, errfmt.Errorf("%w: %s", ErrBadPath, path)
	}
	if dir {
		segs = append(segs, webfile.IndexFile)
	}
	sess, stale, err := c.sessions.get(ctx)
	if err != nil {
		return Resolved{}, err
	}
	parent, name := segs[:len(segs)-1], segs[len(segs)-1]
	d := c.dirs.get(sess.Root, strings.Join(parent, "/"))
	d.once.Do(func() { d.rd, d.err = c.fetchDir(ctx, sess, parent) })
	if d.err != nil {
		c.dirs.forget(sess.Root, d)
		return Resolved{}, d.err
	}
	fc, found, err := d.rd.Lookup(name)
	if err != nil {
		return Resolved{}, err
	}
	if !found {
		return Resolved{}, errfmt.Errorf("%w: %s", ErrNotFound, path)
	}
	return Resolved{Root: sess.Root, Stale: stale, CID: fc.String(), ContentType: webfile.ContentType(name)}, nil
}

// fetchDir fetches the directory at segs below the session's root from the
// first source that serves it, verified.
func (c *Client) fetchDir(ctx context.Context, sess *Session, segs []string) (*verify.Reader, error) {
	f := &fetch{c: c, ctx: ctx, start: c.cfg.Now(), sess: sess, segs: segs, srcs: c.sources(sess)}
	for {
		src, ok := f.nextSource()
		if !ok {
			return nil, f.exhausted()
		}
		a, ent, err := f.open(src, nil)
		if err != nil {
			if errors.Is(err, verify.ErrNotFound) {
				return nil, errfmt.Errorf("%w: /%s", ErrNotFound, strings.Join(segs, "/"))
			}
			f.fail(a, err)
			continue
		}
		a.close()
		if ent.Kind != verify.KindDirectory {
			return nil, errfmt.Errorf("%w: /%s is not a directory", ErrNotFound, strings.Join(segs, "/"))
		}
		return a.vr, nil
	}
}

// dirCache keeps the verified directories Resolve fetched for the newest
// root (directories of a root never change; a new root starts afresh).
type dirCache struct {
	mu   sync.Mutex
	root string
	dirs map[string]*dirEntry
}

type dirEntry struct {
	once sync.Once
	rd   *verify.Reader
	err  error
}

func (dc *dirCache) get(root, dir string) *dirEntry {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.root != root || dc.dirs == nil {
		dc.root, dc.dirs = root, make(map[string]*dirEntry)
	}
	d := dc.dirs[dir]
	if d == nil {
		d = &dirEntry{}
		dc.dirs[dir] = d
	}
	return d
}

// forget drops a failed entry so the next Resolve tries again.
func (dc *dirCache) forget(root string, d *dirEntry) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.root != root {
		return
	}
	for k, v := range dc.dirs {
		if v == d {
			delete(dc.dirs, k)
		}
	}
}
