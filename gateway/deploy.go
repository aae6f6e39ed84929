package gateway

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
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/events"
)

// Deploy states in a DeployRecord.
const (
	DeployPlacing   = "placing"   // verified; waiting for Replicas nodes to pin it
	DeployPublished = "published" // the site serves this root
)

// PublisherDurable is the durable consumer name of the publishing role,
// shared by every gateway so each event is handled once.
const PublisherDurable = "publisher"

// DeployRecord is a site's value in the deploys KV bucket (key: site
// name): its latest deploy.
type DeployRecord struct {
	Site      string    `json:"site"`
	Root      string    `json:"root"`
	Size      int64     `json:"size"`   // bytes of the CAR
	Blocks    int       `json:"blocks"` // distinct blocks
	Replicas  int       `json:"replicas"`
	Account   string    `json:"account,omitempty"` // the account the site is charged to once published
	State     string    `json:"state"`             // DeployPlacing or DeployPublished
	Deployed  time.Time `json:"deployed"`
	Published time.Time `json:"published,omitzero"`
}

// deployer is the gateway's deploy machinery, set when the deploy API is on.
type deployer struct {
	dir       string // Config.DataDir
	tokens    jetstream.KeyValue
	deploys   jetstream.KeyValue
	places    jetstream.KeyValue
	adminHash [sha256.Size]byte
	adminPath string // where the admin token is kept, or "" when configured
	sub       *events.Subscription
}

func (d *deployer) uploadsDir() string { return filepath.Join(d.dir, "uploads") }
func (d *deployer) contentDir() string { return filepath.Join(d.dir, "content") }
func (d *deployer) contentPath(root string) string {
	return filepath.Join(d.contentDir(), root+".car")
}

// startDeployer turns the deploy API on: buckets, admin token, directories
// and the publisher consumer.
func (g *Gateway) startDeployer(ctx context.Context) error {
	d := &deployer{dir: g.cfg.DataDir}
	var err error
	if d.tokens, err = g.cfg.Bus.KV(events.BucketTokens); err != nil {
		return err
	}
	if d.deploys, err = g.cfg.Bus.KV(events.BucketDeploys); err != nil {
		return err
	}
	if d.places, err = g.cfg.Bus.KV(events.BucketPlacements); err != nil {
		return err
	}
	admin := g.cfg.AdminToken
	if admin == "" {
		var created bool
		admin, d.adminPath, created, err = loadAdminToken(d.dir)
		if err != nil {
			return err
		}
		if created {
			g.log.Info("generated the admin token", "file", d.adminPath)
		} else {
			g.log.Info("admin token", "file", d.adminPath)
		}
	}
	d.adminHash = sha256.Sum256([]byte(admin))
	for _, dir := range []string{d.uploadsDir(), d.contentDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	// Uploads left by a crash are garbage.
	if ents, err := os.ReadDir(d.uploadsDir()); err == nil {
		for _, e := range ents {
			_ = os.Remove(filepath.Join(d.uploadsDir(), e.Name()))
		}
	}
	g.dep = d
	// The subscription lives until Close; ctx only bounds the setup above.
	d.sub, err = g.cfg.Bus.Subscribe(g.bgCtx, PublisherDurable, g.onPublisherEvent,
		events.TypeSiteDeployed, events.TypeContentReplicated)
	return err
}

// AdminTokenPath is the file holding the generated admin token, or "" when
// the token was configured or the deploy API is off.
func (g *Gateway) AdminTokenPath() string {
	if g.dep == nil {
		return ""
	}
	return g.dep.adminPath
}

// Deploy stages the CAR read from body under DataDir, verifies it
// (internal/carcheck: every block hashed, one root, nothing missing,
// nothing extra, the root a UnixFS directory or file), keeps it for nodes
// to fetch, records the deploy as placing and emits site.deployed. The site
// is published once Replicas nodes hold the root. A refused CAR leaves
// nothing behind: errors wrap ErrTooLarge (over MaxDeployBytes),
// carcheck.ErrInvalid (a *carcheck.Error naming the problem and block) or
// ErrInvalidSiteName. The caller authorizes.
func (g *Gateway) Deploy(ctx context.Context, site string, body io.Reader) (DeployRecord, error) {
	return g.DeployFor(ctx, site, "", body)
}

// DeployFor is Deploy for a site that belongs to account (once this
// version is published). An empty account picks the account of the site's
// deploy token, else the site's current one, else DefaultAccount when it
// exists, else none. A named account must exist (ledger.ErrUnknownAccount).
// The caller authorizes (a deploy token may name only its own account).
func (g *Gateway) DeployFor(ctx context.Context, site, account string, body io.Reader) (DeployRecord, error) {
	d := g.dep
	if d == nil {
		return DeployRecord{}, ErrDeployOff
	}
	if err := ValidateSiteName(site); err != nil {
		return DeployRecord{}, err
	}
	account, err := g.deployAccount(ctx, site, account)
	if err != nil {
		return DeployRecord{}, err
	}
	f, err := os.CreateTemp(d.uploadsDir(), "deploy-*.car")
	if err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: stage upload: %w", err)
	}
	staged := f.Name()
	defer func() {
		f.Close()
		os.Remove(staged) // no-op once renamed
	}()
	limit := g.cfg.MaxDeployBytes
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || n > limit:
		return DeployRecord{}, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("the CAR is larger than the %d-byte limit", limit)}
	case err != nil:
		return DeployRecord{}, fmt.Errorf("gateway: read upload: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: stage upload: %w", err)
	}
	res, err := carcheck.Check(f, carcheck.Config{})
	if err != nil {
		return DeployRecord{}, err
	}
	if res.Bytes != n {
		return DeployRecord{}, fmt.Errorf("gateway: verified %d of %d staged bytes", res.Bytes, n)
	}
	if err := f.Sync(); err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: stage upload: %w", err)
	}
	root := res.Root.String()
	if err := os.Rename(staged, d.contentPath(root)); err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: keep CAR: %w", err)
	}
	rec := DeployRecord{
		Site: site, Root: root, Size: n, Blocks: res.Blocks, Replicas: g.cfg.Replicas,
		Account: account, State: DeployPlacing, Deployed: g.cfg.Now().UTC(),
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return DeployRecord{}, err
	}
	if _, err := d.deploys.Put(ctx, site, b); err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: record deploy: %w", err)
	}
	ev, err := events.New(events.TypeSiteDeployed, g.cfg.Name, events.SiteDeployed{
		Site: site, Root: root, Size: n, Blocks: res.Blocks, Replicas: rec.Replicas,
		CAR: g.publicURL() + ContentPrefix + root + ".car",
	})
	if err == nil {
		err = g.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil {
		return DeployRecord{}, fmt.Errorf("gateway: emit site.deployed: %w", err)
	}
	g.log.Info("site deployed", "site", site, "account", account, "root", root, "bytes", n, "blocks", res.Blocks, "replicas", rec.Replicas)
	return rec, nil
}

// ContentPrefix is where nodes fetch verified deploy CARs:
// GET ContentPrefix + "<root>.car", signed by the node key.
const ContentPrefix = "/v1/content/"

func (g *Gateway) publicURL() string {
	if g.cfg.PublicURL != "" {
		return g.cfg.PublicURL
	}
	return g.URL()
}

// DeployStatus returns site's latest deploy, if any.
func (g *Gateway) DeployStatus(ctx context.Context, site string) (DeployRecord, bool, error) {
	if g.dep == nil {
		return DeployRecord{}, false, ErrDeployOff
	}
	e, err := g.dep.deploys.Get(ctx, site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return DeployRecord{}, false, nil
	}
	if err != nil {
		return DeployRecord{}, false, fmt.Errorf("gateway: read deploy: %w", err)
	}
	var rec DeployRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return DeployRecord{}, false, fmt.Errorf("gateway: deploy record %q: %w", site, err)
	}
	return rec, true, nil
}

// onPublisherEvent publishes a deployed site once enough nodes hold it:
// on site.deployed (the root may be held already) and on
// content.replicated (one more holder).
func (g *Gateway) onPublisherEvent(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.TypeSiteDeployed:
		var d events.SiteDeployed
		if err := ev.Decode(&d); err != nil {
			return nil
		}
		return g.tryPublish(ctx, d.Site, d.Root)
	case events.TypeContentReplicated:
		var c events.ContentReplicated
		if err := ev.Decode(&c); err != nil {
			return nil
		}
		p, ok, err := g.placement(ctx, c.Root)
		if err != nil || !ok {
			return err
		}
		for _, site := range p.Sites {
			if err := g.tryPublish(ctx, site, c.Root); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *Gateway) placement(ctx context.Context, root string) (coordinator.Placement, bool, error) {
	e, err := g.dep.places.Get(ctx, root)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return coordinator.Placement{}, false, nil
	}
	if err != nil {
		return coordinator.Placement{}, false, fmt.Errorf("gateway: read placement: %w", err)
	}
	var p coordinator.Placement
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return coordinator.Placement{}, false, fmt.Errorf("gateway: placement %s: %w", root, err)
	}
	return p, true, nil
}

// tryPublish publishes site at root if that is its latest deploy, it is
// not published yet and at least its Replicas live nodes hold the root.
func (g *Gateway) tryPublish(ctx context.Context, site, root string) error {
	d, ok, err := g.DeployStatus(ctx, site)
	if err != nil || !ok || d.Root != root || d.State == DeployPublished {
		return err
	}
	p, ok, err := g.placement(ctx, root)
	if err != nil || !ok {
		return err
	}
	live, err := g.coord.LiveNodes(ctx)
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
	if _, err := g.kvSites.PublishFor(ctx, site, root, d.Account); err != nil {
		return fmt.Errorf("gateway: publish %s: %w", site, err)
	}
	_, err = events.Update(ctx, g.dep.deploys, site, func(old []byte) ([]byte, error) {
		var cur DeployRecord
		if old == nil || json.Unmarshal(old, &cur) != nil || cur.Root != root || cur.State == DeployPublished {
			return nil, events.ErrNoChange
		}
		cur.State, cur.Published = DeployPublished, g.cfg.Now().UTC()
		return json.Marshal(cur)
	})
	if err != nil {
		return fmt.Errorf("gateway: record publish: %w", err)
	}
	g.log.Info("site published", "site", site, "root", root, "holders", held)
	return nil
}
