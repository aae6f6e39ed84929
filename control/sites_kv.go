package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
)

// MaxSiteHistory bounds the versions a SiteRecord keeps for rollback.
const MaxSiteHistory = 64

// KVSitesConfig configures a KVSites. Bus is required.
type KVSitesConfig struct {
	// Bus holds the sites bucket and receives site.published and
	// site.rolled_back.
	Bus *events.Bus
	// Source names the writer in emitted events. Default: the Bus's name.
	Source string
	// Logger default slog.Default(); Now default time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

var (
	_ gateway.SiteSource    = (*KVSites)(nil)
	_ gateway.SiteWatcher   = (*KVSites)(nil)
	_ gateway.SiteRoots     = (*KVSites)(nil)
	_ gateway.PreviewSource = (*KVSites)(nil)
)

// KVSites is a gateway.SiteSource backed by the sites KV bucket. It
// mirrors the bucket in memory (a watch keeps the mirror current, so Site
// costs no round trip) and tells its watchers about every root change,
// wherever it was written. Publish and Rollback write with compare-and-set, so writers
// on several gateways never lose an update.
type KVSites struct {
	cfg KVSitesConfig
	log *slog.Logger
	kv  jetstream.KeyValue

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	subs   []*nats.Subscription // plain-message feeds of publish/rollback events
	closed bool                 // under mu: no new event handlers start

	notify   sync.Mutex // serializes mirror updates with their callbacks
	mu       sync.Mutex
	sites    map[string]kvSite
	owners   map[string]rootOwner // root → its first publisher; nil: to rebuild
	watchers []func(gateway.Site, string)
}

type kvSite struct {
	rec api.SiteRecord
	rev uint64
}

// NewKVSites loads the sites bucket and starts watching it. Stop it with
// Close.
func NewKVSites(ctx context.Context, cfg KVSitesConfig) (*KVSites, error) {
	if cfg.Bus == nil {
		return nil, configError("KVSitesConfig.Bus is required")
	}
	if cfg.Source == "" {
		cfg.Source = cfg.Bus.Name()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := cfg.Bus.KV(events.BucketSites)
	if err != nil {
		return nil, err
	}
	s := &KVSites{cfg: cfg, log: cfg.Logger.With("component", "sites"), kv: kv, sites: make(map[string]kvSite)}
	// The watch lives until Close (a watch stops with its context); ctx
	// only bounds the initial load.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	w, err := kv.WatchAll(s.ctx)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("control: watch sites: %w", err)
	}
	// The current values arrive first, then a nil entry.
	if err := events.LoadInitial(ctx, w, s.apply); err != nil {
		_ = w.Stop()
		s.cancel()
		return nil, fmt.Errorf("control: load sites: %w", err)
	}
	s.wg.Add(1)
	go s.watch(w)
	// The watch above rides on one JetStream consumer; when the server
	// holding it goes away the client notices only after missed heartbeats
	// (tens of seconds). The publish and rollback events also travel as
	// plain messages, which a reconnected client gets at once: each one
	// makes the gateway re-read that site.
	subs := make([]*nats.Subscription, 0, 2)
	for _, t := range []events.Type{events.TypeSitePublished, events.TypeSiteRolledBack} {
		sub, err := cfg.Bus.Conn().Subscribe(t.Subject(), s.onSiteEvent)
		if err != nil {
			for _, sub := range subs {
				_ = sub.Unsubscribe()
			}
			s.Close()
			return nil, fmt.Errorf("control: subscribe %s: %w", t, err)
		}
		subs = append(subs, sub)
	}
	s.subs = subs
	return s, nil
}

// onSiteEvent re-reads the site a publish or rollback event names.
func (s *KVSites) onSiteEvent(m *nats.Msg) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ev, err := events.ParseEvent(m.Data)
	if err != nil {
		return
	}
	var p struct {
		Site string `json:"site"`
	}
	if ev.Decode(&p) != nil || !gateway.ValidSiteName(p.Site) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	e, err := s.kv.Get(ctx, p.Site)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("re-reading site after event failed", "site", p.Site, "err", err)
		}
		return
	}
	s.apply(e)
}

func (s *KVSites) watch(w jetstream.KeyWatcher) {
	defer s.wg.Done()
	events.Watch(s.ctx, w, s.apply)
}

func (s *KVSites) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		s.mu.Lock()
		if cur, ok := s.sites[e.Key()]; ok && cur.rev < e.Revision() {
			delete(s.sites, e.Key())
			s.owners = nil
		}
		s.mu.Unlock()
		return
	}
	var rec api.SiteRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		s.log.Warn("bad site record in KV", "site", e.Key(), "err", err)
		return
	}
	s.store(rec, e.Revision())
}

// store mirrors rec at revision rev unless a newer one is known, and calls
// the watchers when the site's root changed.
func (s *KVSites) store(rec api.SiteRecord, rev uint64) {
	s.notify.Lock()
	defer s.notify.Unlock()
	s.mu.Lock()
	cur, had := s.sites[rec.Name]
	if had && cur.rev >= rev {
		s.mu.Unlock()
		return
	}
	s.sites[rec.Name] = kvSite{rec: rec, rev: rev}
	s.owners = nil
	watchers := slices.Clone(s.watchers)
	s.mu.Unlock()
	if had && cur.rec.Root == rec.Root {
		return
	}
	for _, fn := range watchers {
		fn(gateway.Site{Name: rec.Name, Root: rec.Root, Account: rec.Account, Size: rec.Size}, cur.rec.Root)
	}
}

// Site implements gateway.SiteSource.
func (s *KVSites) Site(_ context.Context, name string) (gateway.Site, error) {
	s.mu.Lock()
	cur, ok := s.sites[name]
	s.mu.Unlock()
	if !ok {
		return gateway.Site{}, fmt.Errorf("%w: %q", gateway.ErrUnknownSite, name)
	}
	return gateway.Site{Name: name, Root: cur.rec.Root, Account: cur.rec.Account, Size: cur.rec.Size}, nil
}

// SiteOfRoot implements gateway.SiteRoots: of the sites whose history
// holds root, the one that published it first (ties: the first name). The
// index behind it is rebuilt after a site changed, at the next call.
func (s *KVSites) SiteOfRoot(_ context.Context, root string) (gateway.Site, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owners == nil {
		s.owners = make(map[string]rootOwner)
		for _, cur := range s.sites {
			for _, v := range cur.rec.History {
				o, ok := s.owners[v.Root]
				if !ok || v.Time.Before(o.at) || v.Time.Equal(o.at) && cur.rec.Name < o.site {
					s.owners[v.Root] = rootOwner{site: cur.rec.Name, at: v.Time}
				}
			}
		}
	}
	o, ok := s.owners[root]
	if !ok {
		return gateway.Site{}, fmt.Errorf("%w: no site published %s", gateway.ErrUnknownSite, root)
	}
	rec := s.sites[o.site].rec
	return gateway.Site{Name: rec.Name, Root: rec.Root, Account: rec.Account, Size: rec.Size}, nil
}

// Preview implements gateway.PreviewSource from the previews bucket (a
// few reads per request: previews are for the site's authors, not their
// visitors). Of the sites that preview root, the one whose preview
// expires last owns the origin (its account is billed). An expired
// preview is unknown at once, before it is swept.
func (s *KVSites) Preview(ctx context.Context, root string) (gateway.Site, error) {
	if validateRoot(root) != nil {
		return gateway.Site{}, fmt.Errorf("%w: no preview of %q", gateway.ErrUnknownSite, clip(root))
	}
	kv, err := s.cfg.Bus.KV(events.BucketPreviews)
	if err != nil {
		return gateway.Site{}, err
	}
	keys := []string{root} // the earlier form, keyed by the root alone
	lister, err := kv.ListKeysFiltered(ctx, root+".*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return gateway.Site{}, fmt.Errorf("control: list previews: %w", err)
	}
	if err == nil {
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
	}
	var best, expired api.PreviewRecord
	for _, k := range keys {
		e, ok, err := readPreview(ctx, kv, k)
		if err != nil {
			return gateway.Site{}, err
		}
		switch rec := e.rec; {
		case !ok || rec.Root != root:
		case s.cfg.Now().Before(rec.Expires):
			if rec.Expires.After(best.Expires) {
				best = rec
			}
		case rec.Expires.After(expired.Expires):
			expired = rec
		}
	}
	if best.Root == "" {
		if expired.Root != "" {
			return gateway.Site{}, fmt.Errorf("%w: the preview of %s expired at %s", gateway.ErrUnknownSite, root, expired.Expires.Format(time.RFC3339))
		}
		return gateway.Site{}, fmt.Errorf("%w: no preview of %q", gateway.ErrUnknownSite, clip(root))
	}
	return gateway.Site{Name: best.Site, Root: best.Root, Account: best.Account, Size: best.Size}, nil
}

// rootOwner is the site that published a root first, and when.
type rootOwner struct {
	site string
	at   time.Time
}

// WatchSites implements gateway.SiteWatcher: fn is called with each site
// whose root changed, and its previous root ("" for a new site).
func (s *KVSites) WatchSites(fn func(gateway.Site, string)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}

// Record returns the site's record as last seen.
func (s *KVSites) Record(_ context.Context, name string) (api.SiteRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.sites[name]
	if !ok {
		return api.SiteRecord{}, fmt.Errorf("%w: %q", gateway.ErrUnknownSite, name)
	}
	return cur.rec, nil
}

// List returns every site's record, ordered by name.
func (s *KVSites) List(context.Context) ([]api.SiteRecord, error) {
	s.mu.Lock()
	out := make([]api.SiteRecord, 0, len(s.sites))
	for _, cur := range s.sites {
		out = append(out, cur.rec)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b api.SiteRecord) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// Publish points site name at root, as a new version, and emits
// site.published. Publishing the current root changes nothing and emits
// nothing. Invalid names (gateway.ErrInvalidSiteName) and roots
// (ErrBadRequest) are
// refused before anything is written.
func (s *KVSites) Publish(ctx context.Context, name, root string) (api.SiteRecord, error) {
	return s.PublishFor(ctx, name, root, "", 0)
}

// PublishFor is Publish that also sets the site's account (empty: keep
// the current one) and records the root's size (its CAR's bytes; 0 when
// not known). Changing only the account writes the record without a new
// version and emits nothing.
func (s *KVSites) PublishFor(ctx context.Context, name, root, account string, size int64) (api.SiteRecord, error) {
	if err := gateway.ValidateSiteName(name); err != nil {
		return api.SiteRecord{}, err
	}
	if err := validateRoot(root); err != nil {
		return api.SiteRecord{}, err
	}
	var previous string
	var moved bool
	rec, changed, err := s.update(ctx, name, func(cur api.SiteRecord, exists bool) (api.SiteRecord, error) {
		if exists && cur.Root == root {
			if account == "" || account == cur.Account {
				return cur, events.ErrNoChange
			}
			cur.Account = account
			moved = false
			return cur, nil
		}
		previous, moved = cur.Root, true
		next := nextVersion(cur, name, root, api.ActionPublish, size, s.cfg.Now())
		if account != "" {
			next.Account = account
		}
		return next, nil
	})
	if err != nil || !changed || !moved {
		return rec, err
	}
	s.emit(ctx, events.TypeSitePublished, rec, events.SitePublished{
		Site: name, Root: root, Previous: previous, Version: rec.Version,
	})
	return rec, nil
}

// Rollback points site name back at root, an earlier root in its history
// (empty: the most recent root other than the current one), as a new
// version, and emits site.rolled_back. It fails with gateway.ErrUnknownSite for a
// site never published and ErrNotInHistory for a root the site's history
// does not hold; rolling back to the current root changes nothing.
func (s *KVSites) Rollback(ctx context.Context, name, root string) (api.SiteRecord, error) {
	if err := gateway.ValidateSiteName(name); err != nil {
		return api.SiteRecord{}, err
	}
	if root != "" {
		if err := validateRoot(root); err != nil {
			return api.SiteRecord{}, err
		}
	}
	var from string
	rec, changed, err := s.update(ctx, name, func(cur api.SiteRecord, exists bool) (api.SiteRecord, error) {
		if !exists {
			return cur, fmt.Errorf("%w: %q", gateway.ErrUnknownSite, name)
		}
		to := root
		if to == "" {
			for _, v := range cur.History {
				if v.Root != cur.Root {
					to = v.Root
					break
				}
			}
			if to == "" {
				return cur, fmt.Errorf("%w: site %q has no earlier version", ErrNotInHistory, name)
			}
		} else if !slices.ContainsFunc(cur.History, func(v api.SiteVersion) bool { return v.Root == to }) {
			return cur, fmt.Errorf("%w: %s is not a version of site %q", ErrNotInHistory, to, name)
		}
		if to == cur.Root {
			return cur, events.ErrNoChange
		}
		from = cur.Root
		var size int64
		if i := slices.IndexFunc(cur.History, func(v api.SiteVersion) bool { return v.Root == to }); i >= 0 {
			size = cur.History[i].Size
		}
		return nextVersion(cur, name, to, api.ActionRollback, size, s.cfg.Now()), nil
	})
	if err != nil || !changed {
		return rec, err
	}
	s.emit(ctx, events.TypeSiteRolledBack, rec, events.SiteRolledBack{
		Site: name, Root: rec.Root, From: from, Version: rec.Version,
	})
	return rec, nil
}

// nextVersion returns cur moved to root (of size bytes) as the next
// version.
func nextVersion(cur api.SiteRecord, name, root, action string, size int64, now time.Time) api.SiteRecord {
	now = now.UTC()
	v := cur.Version + 1
	hist := append([]api.SiteVersion{{Version: v, Root: root, Action: action, Time: now, Size: size}}, cur.History...)
	if len(hist) > MaxSiteHistory {
		hist = hist[:MaxSiteHistory]
	}
	return api.SiteRecord{Name: name, Root: root, Version: v, Updated: now, History: hist, Account: cur.Account, Size: size}
}

// update applies fn to the site's record with compare-and-set. fn returns
// events.ErrNoChange to leave it. It reports whether a write happened and
// returns the record as it is after the call.
func (s *KVSites) update(ctx context.Context, name string, fn func(cur api.SiteRecord, exists bool) (api.SiteRecord, error)) (api.SiteRecord, bool, error) {
	var out api.SiteRecord
	var wrote bool
	rev, err := events.Update(ctx, s.kv, name, func(old []byte) ([]byte, error) {
		var cur api.SiteRecord
		exists := old != nil
		if exists {
			if err := json.Unmarshal(old, &cur); err != nil {
				return nil, fmt.Errorf("control: site record %q: %w", name, err)
			}
		}
		next, err := fn(cur, exists)
		out, wrote = next, false
		if err != nil {
			return nil, err
		}
		wrote = true
		return json.Marshal(next)
	})
	if err != nil {
		return api.SiteRecord{}, false, err
	}
	if wrote {
		s.store(out, rev)
	}
	return out, wrote, nil
}

// emit publishes an event whose id is derived from the site and version, so
// a retried write stores one event.
func (s *KVSites) emit(ctx context.Context, t events.Type, rec api.SiteRecord, data any) {
	ev, err := events.NewWithID(string(t)+"/"+rec.Name+"/"+strconv.Itoa(rec.Version), t, s.cfg.Source, data)
	if err == nil {
		err = s.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil {
		s.log.Warn("event not published", "type", t, "site", rec.Name, "err", err)
	}
}

// Close stops watching the bucket. It is idempotent.
func (s *KVSites) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

func validateRoot(root string) error {
	if _, err := cid.Parse(root); err != nil {
		return badRequest("root %q is not a CID: %v", clip(root), err)
	}
	return nil
}
