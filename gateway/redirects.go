package gateway

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/redirects"
	"github.com/verity-cdn/verity/internal/verify"
)

// notFoundPage is the custom 404 page a site may have at its root.
const notFoundPage = "/404.html"

// maxRulesCached bounds the roots whose rules are kept.
const maxRulesCached = 1024

// siteRules caches each root's parsed _redirects file (nil rules for a
// root without one). A root is immutable, so an entry never goes stale.
type siteRules struct {
	mu    sync.Mutex
	roots map[string]redirects.Rules
}

// notFound answers a request for a path the site does not have, as the
// site's _redirects file says (the IPFS web-gateway specification: the
// first matching rule redirects, rewrites with 200, or serves its target
// with 404, 410 or 451), else with its 404.html and status 404, else
// with a plain 404.
func (g *Gateway) notFound(w *statusWriter, r *http.Request, site Site, root cid.CID, nodes []nodeInfo) {
	rules, err := g.rulesOf(r, root, nodes)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	path := r.URL.EscapedPath()
	to, status, ok := rules.Match(path)
	if ok && redirects.IsRedirect(status) {
		if r.URL.RawQuery != "" && !strings.Contains(to, "?") {
			to += "?" + r.URL.RawQuery
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.Redirect(w, r, to, status)
		return
	}
	if !ok {
		to, status = notFoundPage, http.StatusNotFound
	}
	target, _, _ := strings.Cut(to, "?")
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = target, "", ""
	if status != http.StatusOK {
		// The page stands for an error: served whole, unconditionally.
		for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
			r2.Header.Del(h)
		}
		w.as = status
	}
	g.serveContentAt(w, r2, site, path)
}

// rulesOf returns root's _redirects rules, fetched from nodes and verified
// like any file (nil when the root has none). A file that does not parse
// is an ErrSiteRules naming the bad line.
func (g *Gateway) rulesOf(r *http.Request, root cid.CID, nodes []nodeInfo) (redirects.Rules, error) {
	key := root.String()
	g.rules.mu.Lock()
	rules, ok := g.rules.roots[key]
	g.rules.mu.Unlock()
	if ok {
		return rules, nil
	}
	req := verify.Request{Root: root, Path: []string{redirects.FileName}}
	f, err := g.fetchEntity(r, nodes, req, map[string]bool{}, fetchMode{})
	switch {
	case errors.Is(err, ErrNotFound):
		rules = nil
	case err != nil:
		return nil, err
	case f.entity.Kind != verify.KindFile:
		f.close()
		return nil, &RequestError{Kind: ErrSiteRules, Detail: redirects.FileName + " is not a file"}
	default:
		b, err := f.readFull(redirects.MaxSize)
		f.close()
		if errors.Is(err, ErrTooLarge) {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: redirects.FileName + " is larger than 64 KiB"}
		}
		if err != nil {
			return nil, err
		}
		if rules, err = redirects.Parse(b); err != nil {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: err.Error()}
		}
	}
	g.rules.mu.Lock()
	if g.rules.roots == nil || len(g.rules.roots) >= maxRulesCached {
		g.rules.roots = make(map[string]redirects.Rules)
	}
	g.rules.roots[key] = rules
	g.rules.mu.Unlock()
	return rules, nil
}
