package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/verify"
)

// siteHeaders caches each root's parsed _headers file (nil rules for a
// root without one). A root is immutable, so an entry never goes stale.
type siteHeaders struct {
	mu    sync.Mutex
	roots map[string]headers.Rules
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
	g.headerRules.mu.Lock()
	rules, ok := g.headerRules.roots[key]
	g.headerRules.mu.Unlock()
	if ok {
		return rules, nil
	}
	nodes, err := g.nodesFor(r, site.Root)
	if err != nil {
		return nil, err
	}
	req := verify.Request{Root: root, Path: []string{headers.FileName}}
	f, err := g.fetchEntity(r, nodes, req, map[string]bool{}, mode)
	switch {
	case errors.Is(err, ErrNotFound):
		rules = nil
	case err != nil:
		return nil, err
	case f.entity.Kind != verify.KindFile:
		f.close()
		return nil, &RequestError{Kind: ErrSiteRules, Detail: headers.FileName + " is not a file"}
	default:
		b, err := f.readFull(headers.MaxSize)
		f.close()
		if errors.Is(err, ErrTooLarge) {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: headers.FileName + " is larger than 64 KiB"}
		}
		if err != nil {
			return nil, err
		}
		if rules, err = headers.Parse(b); err != nil {
			return nil, &RequestError{Kind: ErrSiteRules, Detail: err.Error()}
		}
	}
	g.headerRules.mu.Lock()
	if g.headerRules.roots == nil || len(g.headerRules.roots) >= maxRulesCached {
		g.headerRules.roots = make(map[string]headers.Rules)
	}
	g.headerRules.roots[key] = rules
	g.headerRules.mu.Unlock()
	return rules, nil
}
