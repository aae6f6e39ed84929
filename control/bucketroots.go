package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
)

// A bucket's root (docs/storage.md, "Content roots") is a UnixFS
// directory whose files are the bucket's objects, each stored and placed
// on its own (StoreCAR). StoreRoot keeps the root's own blocks (its
// directories, HAMT shards included) as a partial CAR and places it
// like a deploy, marked partial: a node fetches these blocks and keeps
// the objects it already holds, fetching only those it lacks. A site may
// follow a bucket: each new root is then deployed to it, published once
// Replicas nodes hold it, with the site's history and rollback.

// Buckets is the S3 API's side of a site that follows a bucket
// (*s3api.Server): FollowBucket asks it to bind.
type Buckets interface {
	// BucketAccount returns the account bucket belongs to; ok is false
	// when there is no such bucket.
	BucketAccount(ctx context.Context, bucket string) (account string, ok bool, err error)
	// FollowBucket records that site follows bucket, which must belong
	// to account, and stores its current root with Follow set
	// (StoreRoot).
	FollowBucket(ctx context.Context, bucket, site, account string) error
}

// SetBuckets gives the control plane the S3 API, which is built after it.
func (c *Control) SetBuckets(b Buckets) { c.buckets.Store(&b) }

type bucketsRef = atomic.Pointer[Buckets]

// StoreRoot verifies and keeps br.Root's partial CAR (its own blocks,
// every one reachable from the root, links to blocks not in it allowed:
// carcheck.Config.Partial) for nodes to fetch, and announces it
// (site.deployed, partial, near br.Near). When a site follows the bucket
// (br.Site, and the site's deploy names br.Bucket, or br.Follow), the
// root is recorded as the site's deploy; the publisher publishes it once
// Replicas nodes hold it. A root older than the site's (br.Version) is
// not deployed.
func (c *Control) StoreRoot(ctx context.Context, br api.BucketRoot, body io.Reader) error {
	if parsed, err := cid.Parse(br.Root); err != nil || parsed.String() != br.Root {
		return badRequest("not a CID: %q", clip(br.Root))
	}
	root := br.Root
	var size int64
	var blocks int
	c.holdUntilPlaced(root) // not removed as collected before it is placed again (collected.go)
	if fi, err := os.Stat(c.contentPath(root)); err == nil {
		size = fi.Size() // kept already: the same tree again
	} else {
		got, n, b, err := c.stage(body, true, c.cfg.MaxDeployBytes)
		if err != nil {
			return err
		}
		if got != root {
			_ = os.Remove(c.contentPath(got))
			return fmt.Errorf("control: the bucket root's CAR is %s, not %s", got, root)
		}
		size, blocks = n, b
	}
	// The placement is labelled with the bucket (Placement.Sites holds
	// br.Label), and with the site when one follows it, so that the
	// publisher publishes the site once the root is held.
	if err := c.emitRoot(ctx, br, br.Label, size, blocks); err != nil {
		return err
	}
	if br.Site == "" {
		return nil
	}
	ok, err := c.deployBucketRoot(ctx, br, size, blocks)
	if err != nil || !ok {
		return err
	}
	return c.emitRoot(ctx, br, br.Site, size, blocks)
}

// emitRoot announces br.Root (site.deployed, partial) under label.
func (c *Control) emitRoot(ctx context.Context, br api.BucketRoot, label string, size int64, blocks int) error {
	ev, err := events.New(events.TypeSiteDeployed, c.cfg.Name, events.SiteDeployed{
		Site: label, Root: br.Root, Size: size, Blocks: blocks, Replicas: c.cfg.Replicas,
		CAR: c.cfg.PublicURL + ContentPrefix + br.Root + ".car", Partial: true, Near: br.Near,
	})
	if err == nil {
		err = c.cfg.Bus.Publish(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("control: emit site.deployed: %w", err)
	}
	return nil
}

// deployBucketRoot records br.Root as the deploy of br.Site, if the site
// follows br.Bucket (or br.Follow binds it) and belongs to the bucket's
// account. It reports whether it did.
func (c *Control) deployBucketRoot(ctx context.Context, br api.BucketRoot, size int64, blocks int) (bool, error) {
	if err := gateway.ValidateSiteName(br.Site); err != nil {
		return false, err
	}
	account, err := c.deployAccount(ctx, br.Site, "")
	if err != nil {
		return false, err
	}
	if account != br.Account {
		// Never published to another account's site, whatever a record says.
		c.log.Warn("bucket root not deployed: the site belongs to another account", "site", br.Site, "bucket", br.Bucket)
		return false, nil
	}
	deployed := false
	_, err = events.Update(ctx, c.deploys, br.Site, func(old []byte) ([]byte, error) {
		var cur api.DeployRecord
		if old != nil {
			if err := json.Unmarshal(old, &cur); err != nil {
				return nil, err
			}
		}
		if !br.Follow && (cur.Bucket != br.Bucket || cur.BucketVersion >= br.Version) {
			return nil, events.ErrNoChange // the site left the bucket, or has a newer root
		}
		if !br.Follow && cur.Root == br.Root {
			deployed = true // the same root again: published already, or soon
			return nil, events.ErrNoChange
		}
		deployed = true
		return json.Marshal(api.DeployRecord{
			Site: br.Site, Root: br.Root, Size: size, Blocks: blocks, Replicas: c.cfg.Replicas,
			Account: account, State: api.DeployPlacing, Deployed: c.cfg.Now().UTC(),
			Bucket: br.Bucket, BucketVersion: br.Version,
		})
	})
	if err != nil {
		return false, fmt.Errorf("control: record deploy: %w", err)
	}
	if deployed {
		c.log.Info("bucket root deployed", "site", br.Site, "bucket", br.Bucket, "root", br.Root, "version", br.Version)
	}
	return deployed, nil
}

// FollowBucket makes site follow bucket: the bucket must belong to the
// site's account (its deploy token's). The site is published at the
// bucket's root once nodes hold it, and again at each change.
func (c *Control) FollowBucket(ctx context.Context, site, bucket string) (api.DeployRecord, error) {
	if err := gateway.ValidateSiteName(site); err != nil {
		return api.DeployRecord{}, err
	}
	b := c.buckets.Load()
	if b == nil {
		return api.DeployRecord{}, &RequestError{Kind: ErrConflict, Detail: "this gateway serves no S3 API (--s3-listen)"}
	}
	account, err := c.deployAccount(ctx, site, "")
	if err != nil {
		return api.DeployRecord{}, err
	}
	owner, ok, err := (*b).BucketAccount(ctx, bucket)
	switch {
	case err != nil:
		return api.DeployRecord{}, err
	case !ok:
		return api.DeployRecord{}, fmt.Errorf("%w: no bucket %q", ErrNotFound, clip(bucket))
	case owner != account:
		// Only the bucket's account may publish it, to a site of its own.
		return api.DeployRecord{}, &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("bucket %q does not belong to the account of site %q", clip(bucket), site)}
	}
	if err := (*b).FollowBucket(ctx, bucket, site, account); err != nil {
		return api.DeployRecord{}, err
	}
	d, ok, err := c.DeployStatus(ctx, site)
	if err == nil && (!ok || d.Bucket != bucket) {
		err = fmt.Errorf("control: the site's deploy does not name bucket %q", bucket)
	}
	return d, err
}

func (c *Control) apiFollowBucket(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.FollowBucket
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.Bucket == "" {
		c.fail(w, r, badRequest("body: want {\"bucket\": \"...\"}"))
		return
	}
	rec, err := c.FollowBucket(r.Context(), name, req.Bucket)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// serveContent serves the CAR at path; with base (a root whose CAR is
// kept here too) it leaves out the blocks that CAR holds: a node that
// holds base needs only the others (a bucket's new root: the directory
// blocks its change made).
func serveContent(w http.ResponseWriter, r *http.Request, path, basePath string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1")
	w.Header().Set("Cache-Control", "no-store")
	if basePath == "" {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return nil
	}
	skip := map[string]bool{}
	bf, err := os.Open(basePath)
	if err != nil {
		return err
	}
	defer bf.Close()
	br, err := car.NewReader(bf, car.Config{})
	if err != nil {
		return err
	}
	for {
		c, _, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		skip[c.Key()] = true
	}
	cr, err := car.NewReader(f, car.Config{})
	if err != nil {
		return err
	}
	cw, err := car.NewWriter(w, cr.Roots())
	if err != nil {
		return err
	}
	for {
		c, data, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if skip[c.Key()] {
			continue
		}
		if err := cw.Put(c, data); err != nil {
			return err
		}
	}
}
