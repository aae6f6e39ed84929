package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/headers"
)

// siteHeaders caches each root's parsed _headers file (nil rules for a
// root without one). A root is immutable, so an entry never goes stale.
type siteHeaders struct {
	rootCache[headers.Rules]
	// missed holds, per root, until when a session does not try to fetch
	// its _headers again after no node could serve it.
	missed map[string]time.Time
}

// sessionHeadersRetry is how long sessions go without a root's _headers
// after no node could serve it in sessionHeadersWait.
const sessionHeadersRetry = 10 * time.Second

// sessionHeaders returns root's rules for a session: as headersOf, but
// waiting at most sessionHeadersWait, charging no node, and not trying
// again for sessionHeadersRetry after nodes failed (ok false then: the
// session goes without them). A file that does not parse is an error.
func (g *Gateway) sessionHeaders(r *http.Request, site Site, root cid.CID) (rules headers.Rules, ok bool, err error) {
	key := root.String()
	now := g.cfg.Now()
	g.headerRules.mu.Lock()
	until, missed := g.headerRules.missed[key]
	g.headerRules.mu.Unlock()
	if missed && now.Before(until) {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionHeadersWait)
	rules, err = g.headersOf(r.WithContext(ctx), site, root, fetchMode{uncharged: true})
	cancel()
	switch {
	case errors.Is(err, ErrSiteRules):
		return nil, false, err
	case err != nil:
		g.log.Debug("session without the site's headers", "site", site.Name, "err", err)
		g.headerRules.mu.Lock()
		if g.headerRules.missed == nil || len(g.headerRules.missed) >= maxRulesCached {
			g.headerRules.missed = make(map[string]time.Time)
		}
		g.headerRules.missed[key] = now.Add(sessionHeadersRetry)
		g.headerRules.mu.Unlock()
		return nil, false, nil
	}
	return rules, true, nil
}

// headersOf returns root's _headers rules, fetched from the site's nodes
// and verified like any file (nil when the root has none). A file that
// does not parse is an ErrSiteRules naming the bad line. mode.uncharged
// for a fetch no visitor waits on.
func (g *Gateway) headersOf(r *http.Request, site Site, root cid.CID, mode fetchMode) (headers.Rules, error) {
	key := root.String()
	if rules, ok := g.headerRules.get(key); ok {
		return rules, nil
	}
	nodes, err := g.nodesFor(r, site.Root)
	if err != nil {
		return nil, err
	}
	b, err := g.siteFile(r, nodes, root, headers.FileName, headers.MaxSize, mode)
	if err != nil {
		return nil, err
	}
	var rules headers.Rules
	if b != nil {
		if rules, err = headers.Parse(b); err != nil {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: err.Error()}
		}
	}
	g.headerRules.put(key, rules)
	return rules, nil
}
