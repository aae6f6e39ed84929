package control

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/events"
)

// PublisherDurable is the durable consumer name of the publishing role,
// shared by every gateway so each event is handled once.
const PublisherDurable = "publisher"

func (c *Control) uploadsDir() string { return filepath.Join(c.cfg.DataDir, "uploads") }
func (c *Control) contentDir() string { return filepath.Join(c.cfg.DataDir, "content") }
func (c *Control) contentPath(root string) string {
	return filepath.Join(c.contentDir(), root+".car")
}

// startDeploys opens the buckets, loads the admin token, prepares the
// directories and starts the publisher consumer.
func (c *Control) startDeploys() error {
	var err error
	if c.tokens, err = c.cfg.Bus.KV(events.BucketTokens); err != nil {
		return err
	}
	if c.tokensLeader, err = c.cfg.Bus.LeaderKV(events.BucketTokens); err != nil {
		return err
	}
	if c.deploys, err = c.cfg.Bus.KV(events.BucketDeploys); err != nil {
		return err
	}
	if c.places, err = c.cfg.Bus.KV(events.BucketPlacements); err != nil {
		return err
	}
	if c.previews, err = c.cfg.Bus.KV(events.BucketPreviews); err != nil {
		return err
	}
	admin := c.cfg.AdminToken
	if admin == "" {
		var created bool
		admin, c.adminPath, created, err = loadAdminToken(c.cfg.DataDir)
		if err != nil {
			return err
		}
		if created {
			c.log.Info("generated the admin token", "file", c.adminPath)
		} else {
			c.log.Info("admin token", "file", c.adminPath)
		}
	}
	c.adminHash = sha256.Sum256([]byte(admin))
	c.admin = admin
	for _, dir := range []string{c.uploadsDir(), c.contentDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// Uploads left by a crash are garbage.
	if ents, err := os.ReadDir(c.uploadsDir()); err == nil {
		for _, e := range ents {
			_ = os.Remove(filepath.Join(c.uploadsDir(), e.Name()))
		}
	}
	// The subscriptions live until Close.
	c.sub, err = c.cfg.Bus.Subscribe(c.ctx, PublisherDurable, c.onPublisherEvent,
		events.TypeSiteDeployed, events.TypeContentReplicated)
	if err != nil {
		return err
	}
	if c.cmetrics, err = newContentMetrics(c.cfg.Registerer); err != nil {
		return err
	}
	c.collected, err = c.cfg.Bus.Subscribe(c.ctx, contentDurable(c.cfg.Name), c.onContentCollected, events.TypeContentCollected)
	return err
}

// Deploy stages the CAR read from body under DataDir, verifies it
// (internal/carcheck: every block hashed, one root, nothing missing,
// nothing extra, the root a UnixFS directory or file), keeps it for nodes
// to fetch, records the deploy as placing and emits site.deployed. The site
// is published once Replicas nodes hold the root. A refused CAR leaves
// nothing behind: errors wrap ErrTooLarge (over MaxDeployBytes),
// carcheck.ErrInvalid (a *carcheck.Error naming the problem and block) or
// gateway.ErrInvalidSiteName. The caller authorizes.
func (c *Control) Deploy(ctx context.Context, site string, body io.Reader) (api.DeployRecord, error) {
	return c.DeployFor(ctx, site, "", body)
}

// DeployFor is Deploy for a site that belongs to account (once this
// version is published). An empty account picks the account of the site's
// deploy token, else the site's current one, else DefaultAccount when it
// exists, else none. A named account must exist (ledger.ErrUnknownAccount).
// The caller authorizes (a deploy token may name only its own account).
func (c *Control) DeployFor(ctx context.Context, site, account string, body io.Reader) (api.DeployRecord, error) {
	if err := gateway.ValidateSiteName(site); err != nil {
		return api.DeployRecord{}, err
	}
	account, err := c.deployAccount(ctx, site, account)
	if err != nil {
		return api.DeployRecord{}, err
	}
	root, n, blocks, err := c.stageCAR(body)
	if err != nil {
		c.emitDeployFailed(ctx, site, false, err)
		return api.DeployRecord{}, err
	}
	rec := api.DeployRecord{
		Site: site, Root: root, Size: n, Blocks: blocks, Replicas: c.cfg.Replicas,
		Account: account, State: api.DeployPlacing, Deployed: c.cfg.Now().UTC(),
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return api.DeployRecord{}, err
	}
	if _, err := c.deploys.Put(ctx, site, b); err != nil {
		return api.DeployRecord{}, fmt.Errorf("control: record deploy: %w", err)
	}
	if err := c.emitDeployed(ctx, events.SiteDeployed{Site: site, Root: root, Size: n, Blocks: blocks}); err != nil {
		return api.DeployRecord{}, err
	}
	c.log.Info("site deployed", "site", site, "account", account, "root", root, "bytes", n, "blocks", blocks, "replicas", rec.Replicas)
	return rec, nil
}

// emitDeployed announces a staged root (site.deployed, d with its
// replicas and the content store's CAR URL filled in): placement orders
// its replicas on nodes, which fetch it from the content store.
func (c *Control) emitDeployed(ctx context.Context, d events.SiteDeployed) error {
	d.Replicas, d.CAR = c.cfg.Replicas, c.cfg.PublicURL+ContentPrefix+d.Root+".car"
	ev, err := events.New(events.TypeSiteDeployed, c.cfg.Name, d)
	if err == nil {
		err = c.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("control: emit site.deployed: %w", err)
	}
	return nil
}

// emitDeployFailed announces a refused deploy (site.deploy_failed), with
// the reason the client was given: an error of ours is not detailed.
func (c *Control) emitDeployFailed(ctx context.Context, site string, preview bool, err error) {
	d := events.DeployFailed{Site: site, Error: err.Error(), Preview: preview}
	if statusOf(err) >= 500 {
		d.Error = "the gateway could not keep the deploy"
	}
	var ce *carcheck.Error
	if errors.As(err, &ce) {
		d.Code, d.CID = ce.Code, ce.CID
	}
	ev, err := events.New(events.TypeDeployFailed, c.cfg.Name, d)
	if err == nil {
		err = c.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil {
		c.log.Warn("emit site.deploy_failed", "site", site, "err", err)
	}
}

// stageCAR stages the CAR read from body, verifies it (carcheck), checks
// that its _headers and _redirects parse (checkSiteFiles) and keeps it
// under contentDir for nodes to fetch. It returns the root, the
// CAR's bytes and its blocks.
func (c *Control) stageCAR(body io.Reader) (root string, size int64, blocks int, err error) {
	return c.stage(body, false, c.cfg.MaxDeployBytes)
}

// stage is stageCAR; partial accepts a CAR that is part of its root's DAG
// (carcheck.Config.Partial: a bucket root's directory blocks) and skips
// the site files' check (their blocks are not in it).
// limit bounds the CAR's bytes (ErrTooLarge past it).
func (c *Control) stage(body io.Reader, partial bool, limit int64) (root string, size int64, blocks int, err error) {
	f, err := os.CreateTemp(c.uploadsDir(), "deploy-*.car")
	if err != nil {
		return "", 0, 0, fmt.Errorf("control: stage upload: %w", err)
	}
	staged := f.Name()
	defer func() {
		f.Close()
		os.Remove(staged) // no-op once renamed
	}()
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || n > limit:
		return "", 0, 0, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("the CAR is larger than the %d-byte limit", limit)}
	case err != nil:
		return "", 0, 0, fmt.Errorf("control: read upload: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, 0, fmt.Errorf("control: stage upload: %w", err)
	}
	res, err := carcheck.Check(f, carcheck.Config{Partial: partial})
	if err != nil {
		return "", 0, 0, err
	}
	if res.Bytes != n {
		return "", 0, 0, fmt.Errorf("control: verified %d of %d staged bytes", res.Bytes, n)
	}
	if !partial {
		if err := checkSiteFiles(f, res.Root); err != nil {
			return "", 0, 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return "", 0, 0, fmt.Errorf("control: stage upload: %w", err)
	}
	root = res.Root.String()
	c.holdUntilPlaced(root) // not removed as collected before it is placed (collected.go)
	if err := os.Rename(staged, c.contentPath(root)); err != nil {
		return "", 0, 0, fmt.Errorf("control: keep CAR: %w", err)
	}
	return root, n, res.Blocks, nil
}

// ContentPrefix is where nodes fetch verified deploy CARs:
// GET ContentPrefix + "<root>.car", signed by the node key.
const ContentPrefix = "/v1/content/"

// DeployStatus returns site's latest deploy, if any.
func (c *Control) DeployStatus(ctx context.Context, site string) (api.DeployRecord, bool, error) {
	e, err := c.deploys.Get(ctx, site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return api.DeployRecord{}, false, nil
	}
	if err != nil {
		return api.DeployRecord{}, false, fmt.Errorf("control: read deploy: %w", err)
	}
	var rec api.DeployRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return api.DeployRecord{}, false, fmt.Errorf("control: deploy record %q: %w", site, err)
	}
	return rec, true, nil
}

// onPublisherEvent publishes a deployed site once enough nodes hold it:
// on site.deployed (the root may be held already) and on
// content.replicated (one more holder).
func (c *Control) onPublisherEvent(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.TypeSiteDeployed:
		var d events.SiteDeployed
		if err := ev.Decode(&d); err != nil {
			return nil
		}
		return c.tryPublish(ctx, d.Site, d.Root)
	case events.TypeContentReplicated:
		var r events.ContentReplicated
		if err := ev.Decode(&r); err != nil {
			return nil
		}
		p, ok, err := c.placement(ctx, r.Root)
		if err != nil || !ok {
			return err
		}
		for _, site := range p.Sites {
			if err := c.tryPublish(ctx, site, r.Root); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Control) placement(ctx context.Context, root string) (coordinator.Placement, bool, error) {
	e, err := c.places.Get(ctx, root)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return coordinator.Placement{}, false, nil
	}
	if err != nil {
		return coordinator.Placement{}, false, fmt.Errorf("control: read placement: %w", err)
	}
	var p coordinator.Placement
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return coordinator.Placement{}, false, fmt.Errorf("control: placement %s: %w", root, err)
	}
	return p, true, nil
}

// tryPublish publishes site at root if that is its latest deploy, it is
// not published yet and at least its Replicas live nodes hold the root.
func (c *Control) tryPublish(ctx context.Context, site, root string) error {
	d, ok, err := c.DeployStatus(ctx, site)
	if err != nil || !ok || d.Root != root || d.State == api.DeployPublished {
		return err
	}
	p, ok, err := c.placement(ctx, root)
	if err != nil || !ok {
		return err
	}
	live, err := c.coord.LiveNodes(ctx)
	if err != nil {
		return err
	}
	held := 0
	for _, s := range live {
		if p.Nodes[s.Node()].State == coordinator.HolderPinned {
			held++
		}
	}
	if held < d.Replicas {
		return nil
	}
	if _, err := c.sites.PublishFor(ctx, site, root, d.Account, d.Size); err != nil {
		return fmt.Errorf("control: publish %s: %w", site, err)
	}
	_, err = events.Update(ctx, c.deploys, site, func(old []byte) ([]byte, error) {
		var cur api.DeployRecord
		if old == nil || json.Unmarshal(old, &cur) != nil || cur.Root != root || cur.State == api.DeployPublished {
			return nil, events.ErrNoChange
		}
		cur.State, cur.Published = api.DeployPublished, c.cfg.Now().UTC()
		return json.Marshal(cur)
	})
	if err != nil {
		return fmt.Errorf("control: record publish: %w", err)
	}
	c.log.Info("site published", "site", site, "root", root, "holders", held)
	return nil
}
