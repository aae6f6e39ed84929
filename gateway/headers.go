package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/headers"
)

// siteRules caches each root's parsed site file (_headers, _redirects;
// nil rules for a root without one). A root is immutable, so an entry
// never goes stale.
type siteRules[T any] struct {
	rootCache[T]
	// missed holds, per root, until when a session does not try to fetch
	// the file again after no node could serve it.
	missed map[string]time.Time
}

// sessionRulesRetry is how long sessions go without a root's site file
// after no node could serve it in sessionRulesWait.
const sessionRulesRetry = 10 * time.Second

// sessionRules returns root's rules of one site file for a session, as
// fetch (which must fill c) returns them, but waiting at most
// sessionRulesWait and not trying again for sessionRulesRetry after nodes
// failed (ok false then: the session goes without them). A file that does
// not parse is an error.
func sessionRules[T any](g *Gateway, r *http.Request, c *siteRules[T], root cid.CID, fetch func(*http.Request) (T, error)) (rules T, ok bool, err error) {
	var none T
	key := root.String()
	now := g.cfg.Now()
	c.mu.Lock()
	until, missed := c.missed[key]
	c.mu.Unlock()
	if missed && now.Before(until) {
		return none, false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionRulesWait)
	rules, err = fetch(r.WithContext(ctx))
	cancel()
	switch {
	case errors.Is(err, ErrSiteRules):
		return none, false, err
	case err != nil:
		g.log.Debug("session without a site file", "root", key, "err", err)
		c.mu.Lock()
		if c.missed == nil || len(c.missed) >= maxRulesCached {
			c.missed = make(map[string]time.Time)
		}
		c.missed[key] = now.Add(sessionRulesRetry)
		c.mu.Unlock()
		return none, false, nil
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
