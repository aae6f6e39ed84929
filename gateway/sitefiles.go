package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// maxRulesCached bounds the roots whose parsed site files are kept.
const maxRulesCached = 1024

// rootCache keeps a value per root (a parsed _redirects or _headers file;
// nil for a root without one). A root is immutable, so an entry never goes
// stale; when full it starts afresh.
type rootCache[T any] struct {
	mu    sync.Mutex
	roots map[string]T
}

func (c *rootCache[T]) get(root string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.roots[root]
	return v, ok
}

func (c *rootCache[T]) put(root string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roots == nil || len(c.roots) >= maxRulesCached {
		c.roots = make(map[string]T)
	}
	c.roots[root] = v
}

// siteFile fetches the file name at root's top (_redirects, _headers)
// from nodes, verified like any file: nil when the root has none. One that
// is not a file or is over max bytes is an ErrSiteRules.
func (g *Gateway) siteFile(r *http.Request, nodes []nodeInfo, root cid.CID, name string, max int64, mode fetchMode) ([]byte, error) {
	req := verify.Request{Root: root, Path: []string{name}}
	f, err := g.fetchEntity(r, nodes, req, map[string]bool{}, mode)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case f.entity.Kind != verify.KindFile:
		f.close()
		return nil, &RequestError{Kind: ErrSiteRules, Detail: name + " is not a file"}
	}
	b, err := f.readFull(max)
	f.close()
	if errors.Is(err, ErrTooLarge) {
		return nil, &RequestError{Kind: ErrSiteRules, Detail: name + " is larger than " + strconv.FormatInt(max>>10, 10) + " KiB"}
	}
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}
