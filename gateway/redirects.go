package gateway

import (
	"net/http"
	"strings"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/redirects"
)

// notFoundPage is the custom 404 page a site may have at its root.
const notFoundPage = "/404.html"

// notFound answers a request for a path the site does not have, as the
// site's _redirects file says (the IPFS web-gateway specification: the
// first matching rule redirects, rewrites with 200, or serves its target
// with 404, 410 or 451), else with its 404.html and status 404, else
// with a plain 404.
func (g *Gateway) notFound(w *statusWriter, r *http.Request, site Site, root cid.CID, nodes []nodeInfo) {
	rules, err := g.rulesOf(r, root, nodes, fetchMode{})
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
// is an ErrSiteRules naming the bad line. mode.uncharged for a fetch no
// visitor waits on.
func (g *Gateway) rulesOf(r *http.Request, root cid.CID, nodes []nodeInfo, mode fetchMode) (redirects.Rules, error) {
	key := root.String()
	if rules, ok := g.rules.get(key); ok {
		return rules, nil
	}
	b, err := g.siteFile(r, nodes, root, redirects.FileName, redirects.MaxSize, mode)
	if err != nil {
		return nil, err
	}
	var rules redirects.Rules
	if b != nil {
		if rules, err = redirects.Parse(b); err != nil {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: err.Error()}
		}
	}
	g.rules.put(key, rules)
	return rules, nil
}
