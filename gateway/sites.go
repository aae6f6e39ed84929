package gateway

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Site is a named site and its current root CID.
type Site struct {
	Name string
	Root string // CID of the site's current version
	// Account pays for the site's traffic (vouchers and the gateway's
	// metered HTTPS path); "" for none, then PaymentsConfig.DefaultAccount
	// pays for vouchers.
	Account string
	// Size is the bytes of the root's DAG as deployed (its CAR); 0 when
	// not known (a root published by CID alone). Vouchers are sized to
	// it (PaymentsConfig.Budget).
	Size int64
}

// SiteSource resolves a site name to its current root. It returns an error
// wrapping ErrUnknownSite for names it does not know.
type SiteSource interface {
	Site(ctx context.Context, name string) (Site, error)
}

// SiteWatcher is an optional capability of a SiteSource: it calls fn with
// the new state and the previous root ("" for a new site) whenever a site's
// root changes, so the gateway purges that site's caches at once instead of
// at its next request.
type SiteWatcher interface {
	WatchSites(fn func(site Site, previous string))
}

// SiteRoots is a capability a SiteSource needs for custom domains
// (Config.DNSLink): it names the site that published root, whose account
// pays for a custom domain whose DNSLink record names root. When several
// sites published root, the owner is the one that published it first
// (ties: the first name), so a copy of another site's content cannot move
// that site's custom-domain traffic onto its own bill nor the other way
// round. It returns an error wrapping ErrUnknownSite when no site
// published root.
type SiteRoots interface {
	SiteOfRoot(ctx context.Context, root string) (Site, error)
}

// PreviewSource is an optional capability of a SiteSource: it serves
// preview deploys at <PreviewLabel(root)>.<Domain>. Preview returns the
// site whose unexpired preview root is, with Root set to it, or an error
// wrapping ErrUnknownSite.
type PreviewSource interface {
	Preview(ctx context.Context, root string) (Site, error)
}

// PreviewSuffix ends the host label(s) of a preview origin below the
// gateway's domain: <root>.preview.<Domain>.
const PreviewSuffix = ".preview"

// PreviewLabel is the name below the gateway's domain of root's preview
// origin: the root CID (base32, lower case; 59 characters for a BLAKE3
// root, within a DNS label's 63), then "preview".
func PreviewLabel(root string) string { return root + PreviewSuffix }

// DomainSource names the site a custom domain attached to it serves (only
// once its ownership is proven): control's Domains. It returns an error
// wrapping ErrUnknownSite for a host that is no verified domain.
type DomainSource interface {
	DomainSite(ctx context.Context, host string) (string, error)
}

var (
	_ SiteSource  = (*StaticSites)(nil)
	_ SiteWatcher = (*StaticSites)(nil)
	_ SiteRoots   = (*StaticSites)(nil)
)

// StaticSites is an in-memory SiteSource. The zero value is empty and ready.
type StaticSites struct {
	mu       sync.Mutex
	roots    map[string]string
	accounts map[string]string
	watchers []func(Site, string)
}

// NewStaticSites returns a StaticSites holding name → root pairs.
func NewStaticSites(sites map[string]string) *StaticSites {
	s := &StaticSites{}
	for name, root := range sites {
		s.Set(name, root)
	}
	return s
}

// Site implements SiteSource.
func (s *StaticSites) Site(_ context.Context, name string) (Site, error) {
	s.mu.Lock()
	root, ok := s.roots[name]
	account := s.accounts[name]
	s.mu.Unlock()
	if !ok {
		return Site{}, fmt.Errorf("%w: %q", ErrUnknownSite, name)
	}
	return Site{Name: name, Root: root, Account: account}, nil
}

// Set points name at root, and notifies watchers when it changed.
func (s *StaticSites) Set(name, root string) {
	s.mu.Lock()
	if s.roots == nil {
		s.roots = make(map[string]string)
	}
	old, had := s.roots[name]
	s.roots[name] = root
	watchers := slices.Clone(s.watchers)
	s.mu.Unlock()
	if had && old == root {
		return
	}
	for _, fn := range watchers {
		fn(Site{Name: name, Root: root}, old)
	}
}

// SiteOfRoot implements SiteRoots: StaticSites knows current roots only,
// with no dates, so ties go to the first name.
func (s *StaticSites) SiteOfRoot(_ context.Context, root string) (Site, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := ""
	for name, r := range s.roots {
		if r == root && (owner == "" || name < owner) {
			owner = name
		}
	}
	if owner == "" {
		return Site{}, fmt.Errorf("%w: no site published %s", ErrUnknownSite, root)
	}
	return Site{Name: owner, Root: root, Account: s.accounts[owner]}, nil
}

// SetAccount is Set for a site whose traffic account pays.
func (s *StaticSites) SetAccount(name, root, account string) {
	s.mu.Lock()
	if s.accounts == nil {
		s.accounts = make(map[string]string)
	}
	s.accounts[name] = account
	s.mu.Unlock()
	s.Set(name, root)
}

// WatchSites implements SiteWatcher.
func (s *StaticSites) WatchSites(fn func(Site, string)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}
