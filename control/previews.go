package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
)

// Preview deploys. A preview is a root uploaded, verified and placed on
// nodes like any deploy, but not published: it is served at its own
// origin, <root>.preview.<SiteDomain> (gateway.PreviewLabel), until it
// expires, and `verity sites promote` publishes it. An expired preview's
// root is unplaced (its holders unpin it and collect its blocks) unless a
// site publishes it or a deploy or another preview still needs it.

// ErrNotReplicated: promoting a preview fewer than Replicas live nodes
// hold yet (409).
var ErrNotReplicated = errors.New("not replicated yet")

// DeployPreview stages and verifies the CAR read from body as Deploy
// does, records it as site's preview for ttl (0: Config.PreviewTTL; at
// most Config.MaxPreviewTTL) and emits site.deployed, so nodes pin it.
// The site's published root and latest deploy do not change. The caller
// authorizes.
func (c *Control) DeployPreview(ctx context.Context, site, account string, ttl time.Duration, body io.Reader) (api.PreviewRecord, error) {
	if err := gateway.ValidateSiteName(site); err != nil {
		return api.PreviewRecord{}, err
	}
	switch {
	case ttl == 0:
		ttl = c.cfg.PreviewTTL
	case ttl < 0 || ttl > c.cfg.MaxPreviewTTL:
		return api.PreviewRecord{}, badRequest("preview ttl %s: want more than 0 and at most %s", ttl, c.cfg.MaxPreviewTTL)
	}
	account, err := c.deployAccount(ctx, site, account)
	if err != nil {
		return api.PreviewRecord{}, err
	}
	root, n, blocks, err := c.stageCAR(body)
	if err != nil {
		c.emitDeployFailed(ctx, site, true, err)
		return api.PreviewRecord{}, err
	}
	now := c.cfg.Now().UTC()
	rec := api.PreviewRecord{
		Site: site, Root: root, Size: n, Blocks: blocks, Replicas: c.cfg.Replicas,
		Account: account, Deployed: now, Expires: now.Add(ttl),
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return api.PreviewRecord{}, err
	}
	if _, err := c.previews.Put(ctx, previewKey(root, site), b); err != nil {
		return api.PreviewRecord{}, fmt.Errorf("control: record preview: %w", err)
	}
	// A record of the earlier form for the same site and root is
	// replaced by this one (its expiry would release this one's label).
	if old, ok, err := c.previewAt(ctx, root); err == nil && ok && old.rec.Site == site {
		_ = c.previews.Delete(ctx, root, jetstream.LastRevision(old.rev))
	}
	if err := c.emitDeployed(ctx, events.SiteDeployed{Site: site, Root: root, Size: n, Blocks: blocks, Preview: true}); err != nil {
		return api.PreviewRecord{}, err
	}
	rec.URL = c.PreviewURL(root)
	c.log.Info("preview deployed", "site", site, "root", root, "bytes", n, "expires", rec.Expires)
	return rec, nil
}

// PreviewURL is the origin of root's preview: the scheme and port of
// PublicURL, the host <root>.preview.<SiteDomain>.
func (c *Control) PreviewURL(root string) string {
	return c.originURL(gateway.PreviewLabel(root) + "." + c.cfg.SiteDomain)
}

// SiteURL is site's origin: the scheme and port of PublicURL, the host
// <site>.<SiteDomain>.
func (c *Control) SiteURL(site string) string { return c.originURL(site + "." + c.cfg.SiteDomain) }

// sitePreviews lists site's unexpired previews with their URLs, newest
// first.
func (c *Control) sitePreviews(ctx context.Context, site string) ([]api.PreviewRecord, error) {
	keys, err := c.previews.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("control: list previews: %w", err)
	}
	var out []api.PreviewRecord
	now := c.cfg.Now()
	seen := map[string]bool{}
	for key := range keys.Keys() {
		e, ok, err := c.previewAt(ctx, key)
		if err != nil {
			return nil, err
		}
		p := e.rec
		if ok && p.Site == site && now.Before(p.Expires) && !seen[p.Root] {
			seen[p.Root] = true
			p.URL = c.PreviewURL(p.Root)
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b api.PreviewRecord) int { return b.Deployed.Compare(a.Deployed) })
	return out, nil
}

func (c *Control) originURL(host string) string {
	scheme, port := "http", ""
	if u, err := url.Parse(c.cfg.PublicURL); err == nil {
		scheme, port = u.Scheme, u.Port()
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host + "/"
}

// Preview records are keyed <root>.<site>: two sites may preview the
// same root, each with its own expiry and account, and the one expiring
// first takes nothing from the other. A record keyed by its root alone
// is the earlier form (one site per root) and is still read.
func previewKey(root, site string) string { return root + "." + site }

// previewEntry is a preview record and the revision it was read at.
type previewEntry struct {
	rec api.PreviewRecord
	rev uint64
}

// previewAt reads the preview record under key.
func (c *Control) previewAt(ctx context.Context, key string) (previewEntry, bool, error) {
	return readPreview(ctx, c.previews, key)
}

// readPreview reads the preview record under key from the previews
// bucket kv.
func readPreview(ctx context.Context, kv jetstream.KeyValue, key string) (previewEntry, bool, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return previewEntry{}, false, nil
	}
	if err != nil {
		return previewEntry{}, false, fmt.Errorf("control: read preview: %w", err)
	}
	var rec api.PreviewRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return previewEntry{}, false, fmt.Errorf("control: preview %s: %w", clip(key), err)
	}
	return previewEntry{rec: rec, rev: e.Revision()}, true, nil
}

// preview returns site's preview record of root (of either form).
func (c *Control) preview(ctx context.Context, site, root string) (api.PreviewRecord, bool, error) {
	e, ok, err := c.previewAt(ctx, previewKey(root, site))
	if err != nil || ok {
		return e.rec, ok, err
	}
	e, ok, err = c.previewAt(ctx, root)
	if err != nil || !ok || e.rec.Site != site {
		return api.PreviewRecord{}, false, err
	}
	return e.rec, true, nil
}

// Preview returns site's unexpired preview of root, with its URL and how
// many live nodes hold it (ErrNotFound when there is none).
func (c *Control) Preview(ctx context.Context, site, root string) (api.PreviewRecord, error) {
	if err := validateRoot(root); err != nil {
		return api.PreviewRecord{}, err
	}
	p, ok, err := c.preview(ctx, site, root)
	if err != nil {
		return api.PreviewRecord{}, err
	}
	if !ok || !c.cfg.Now().Before(p.Expires) {
		return api.PreviewRecord{}, fmt.Errorf("%w: site %q has no preview of %s (expired, or never deployed)", ErrNotFound, site, clip(root))
	}
	if p.Pinned, err = c.pinnedLive(ctx, root); err != nil {
		return api.PreviewRecord{}, err
	}
	p.URL = c.PreviewURL(root)
	return p, nil
}

// pinnedLive counts the live nodes holding root.
func (c *Control) pinnedLive(ctx context.Context, root string) (int, error) {
	pl, ok, err := c.placement(ctx, root)
	if err != nil || !ok {
		return 0, err
	}
	live, err := c.coord.LiveNodes(ctx)
	if err != nil {
		return 0, err
	}
	held := 0
	for _, s := range live {
		if pl.Nodes[s.Node()].State == coordinator.HolderPinned {
			held++
		}
	}
	return held, nil
}

// Promote publishes site's unexpired preview of root: once Replicas live
// nodes hold it (ErrNotReplicated before), the site serves it, as a new
// version, charged to the preview's account. The preview's own origin
// keeps serving it until it expires. The caller authorizes.
func (c *Control) Promote(ctx context.Context, site, root string) (api.SiteRecord, error) {
	if err := validateRoot(root); err != nil {
		return api.SiteRecord{}, err
	}
	p, err := c.Preview(ctx, site, root)
	if err != nil {
		return api.SiteRecord{}, err
	}
	held := p.Pinned
	if held < p.Replicas {
		return api.SiteRecord{}, fmt.Errorf("%w: %d of %d nodes hold %s; promote it once they do", ErrNotReplicated, held, p.Replicas, root)
	}
	// The site's latest deploy becomes this root, published, so that an
	// earlier deploy still placing cannot publish over it later.
	now := c.cfg.Now().UTC()
	d := api.DeployRecord{
		Site: site, Root: root, Size: p.Size, Blocks: p.Blocks, Replicas: p.Replicas, Account: p.Account,
		State: api.DeployPublished, Deployed: p.Deployed, Published: now,
	}
	b, err := json.Marshal(d)
	if err != nil {
		return api.SiteRecord{}, err
	}
	if _, err := c.deploys.Put(ctx, site, b); err != nil {
		return api.SiteRecord{}, fmt.Errorf("control: record deploy: %w", err)
	}
	rec, err := c.sites.PublishFor(ctx, site, root, p.Account, p.Size)
	if err != nil {
		return api.SiteRecord{}, fmt.Errorf("control: promote %s: %w", site, err)
	}
	c.log.Info("preview promoted", "site", site, "root", root, "version", rec.Version)
	return rec, nil
}

// sweepPreviews runs until ctx ends, expiring previews every
// Config.PreviewSweep.
func (c *Control) sweepPreviews(ctx context.Context) {
	t := time.NewTicker(c.cfg.PreviewSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.ExpirePreviews(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("expiring previews", "err", err)
			}
		}
	}
}

// ExpirePreviews deletes every expired preview record and unplaces its
// root (deleting its CAR) unless the root is still in use: published by
// a site (current or in its history), a site's latest deploy, or an
// unexpired preview.
func (c *Control) ExpirePreviews(ctx context.Context) error {
	keys, err := c.previews.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("control: list previews: %w", err)
	}
	now := c.cfg.Now()
	for key := range keys.Keys() {
		e, ok, err := c.previewAt(ctx, key)
		p, root := e.rec, e.rec.Root
		if err != nil || !ok || now.Before(p.Expires) {
			continue
		}
		// At the revision read: a preview deployed again meanwhile stays.
		if err := c.previews.Delete(ctx, key, jetstream.LastRevision(e.rev)); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
			return fmt.Errorf("control: delete preview %s: %w", clip(key), err)
		}
		used, err := c.rootInUse(ctx, root)
		if err != nil {
			return err
		}
		if used {
			c.log.Info("preview expired", "site", p.Site, "root", root, "unplaced", false)
			continue
		}
		// The preview's label goes; the placement with it only when no
		// other label is left (an S3 object of the same bytes keeps it,
		// and its CAR: the collector's, once nothing references it).
		unplaced, err := c.coord.Release(ctx, root, p.Site)
		if err != nil {
			return err
		}
		c.log.Info("preview expired", "site", p.Site, "root", root, "unplaced", unplaced)
		if !unplaced {
			continue
		}
		// As the collector's removal: not while a store holds the CAR (a
		// PUT of the same bytes that found the preview's placement, and
		// places it again from it) or once it is placed again.
		switch res, _, err := c.removeUnplacedCAR(ctx, root); {
		case err != nil:
			c.log.Warn("preview CAR not deleted", "root", root, "err", err)
		case res == carKeptHeld || res == carKeptPlaced:
			c.log.Info("preview CAR kept: stored again meanwhile", "root", root)
		}
	}
	return nil
}

// rootInUse reports whether a site publishes root (now or in its
// history) or its latest deploy is root.
func (c *Control) rootInUse(ctx context.Context, root string) (bool, error) {
	if _, err := c.sites.SiteOfRoot(ctx, root); err == nil {
		return true, nil
	}
	keys, err := c.deploys.ListKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("control: list deploys: %w", err)
	}
	for site := range keys.Keys() {
		d, ok, err := c.DeployStatus(ctx, site)
		if err != nil {
			return false, err
		}
		if ok && d.Root == root {
			return true, nil
		}
	}
	return false, nil
}
