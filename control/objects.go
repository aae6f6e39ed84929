package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/stall"
)

// The content store for content that is not a site's deploy (an S3
// object): the same staging, verification (internal/carcheck), CAR store
// nodes fetch from and placement as a deploy, without a site to publish.

// StoreCAR stages the CAR read from car as a deploy's is (verified whole,
// kept under DataDir/content for nodes to fetch) and announces it
// (site.deployed with Site set to label, which names no site: the
// placement is recorded under it) so that Replicas nodes are ordered to
// pin it, preferring the nodes that hold near (a bucket's root). It returns the root; Holders tells when nodes hold it. A
// refused CAR leaves nothing behind.
func (c *Control) StoreCAR(ctx context.Context, label, near string, car io.Reader) (string, error) {
	// Not bounded by MaxDeployBytes: the S3 API bounds its objects
	// (s3api.Config.MaxObjectBytes, MaxMultipartBytes), up to 5 TiB, and
	// MaxContentBytes their CARs.
	root, n, blocks, err := c.stage(car, false, c.cfg.MaxContentBytes)
	if err != nil {
		return "", err
	}
	if c.placedOnEnough(ctx, root) {
		return root, nil // placed already: the same bytes stored before
	}
	if err := c.emitDeployed(ctx, events.SiteDeployed{Site: label, Root: root, Size: n, Blocks: blocks, Near: near}); err != nil {
		return "", err
	}
	return root, nil
}

// PlaceAgain places root again, under label and near the holders of
// near, when fewer live nodes hold it or are ordered to than should (its
// holders failed it, or left): from the CAR in the content store, as
// StoreCAR does for the same bytes, without staging it again. A CAR not
// here is fetched from a holder first (OpenCAR). Content placed on
// enough nodes is left as it is.
func (c *Control) PlaceAgain(ctx context.Context, label, near, root string) error {
	if parsed, err := cid.Parse(root); err != nil || parsed.String() != root {
		return badRequest("not a CID: %q", clip(root))
	}
	if c.placedOnEnough(ctx, root) {
		return nil
	}
	fi, err := os.Stat(c.contentPath(root))
	if errors.Is(err, os.ErrNotExist) {
		var f *os.File
		if f, err = c.OpenCAR(ctx, root); err == nil {
			fi, err = f.Stat()
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("control: place %s again: its CAR: %w", root, err)
	}
	return c.emitDeployed(ctx, events.SiteDeployed{Site: label, Root: root, Size: fi.Size(), Near: near})
}

// placedOnEnough reports whether root is placed for Replicas copies and
// as many live nodes hold it or are ordered to (pinned, auditing or
// pending): a store of the same bytes then has nothing to add. A
// placement whose holders failed it, or left, is placed again by the
// store (site.deployed), which orders its pins again.
func (c *Control) placedOnEnough(ctx context.Context, root string) bool {
	p, ok, err := c.placement(ctx, root)
	if err != nil || !ok || p.Replicas < c.cfg.Replicas {
		return false
	}
	live, err := c.coord.LiveNodes(ctx)
	if err != nil {
		return false
	}
	n := 0
	for _, s := range live {
		if h, ok := p.Nodes[s.Node()]; ok && h.State != coordinator.HolderFailed {
			n++
		}
	}
	return n >= c.cfg.Replicas
}

// Keep is called by a store once it has recorded a reference to root
// (an S3 object in its bucket's index): it clears a collector's mark on
// root's placement (coordinator.Keep), so a sweep that had not seen the
// reference leaves the root placed. When the sweep came first and root is
// no longer placed, it is placed again from the CAR in the content store
// (under label, as StoreCAR does) and Keep returns true: the caller waits
// for its holders (Holders) before it acknowledges.
func (c *Control) Keep(ctx context.Context, label, root string) (bool, error) {
	placed, err := c.coord.Keep(ctx, root, label)
	if err != nil || placed {
		return false, err
	}
	c.holdUntilPlaced(root) // the caller's Hold may end before the placement exists
	fi, err := os.Stat(c.contentPath(root))
	if err != nil {
		return false, fmt.Errorf("control: %s was unplaced by the collector and its CAR is not here: %w", root, err)
	}
	c.log.Warn("content collected as a reference to it was recorded: placing it again", "root", root, "label", label)
	if err := c.emitDeployed(ctx, events.SiteDeployed{Site: label, Root: root, Size: fi.Size()}); err != nil {
		return false, err
	}
	return true, nil
}

// Holders counts the live nodes that hold root (pinned and audited), and
// returns how many should (Config.Replicas).
func (c *Control) Holders(ctx context.Context, root string) (held, want int, err error) {
	p, ok, err := c.placement(ctx, root)
	if err != nil || !ok {
		return 0, c.cfg.Replicas, err
	}
	live, err := c.coord.LiveNodes(ctx)
	if err != nil {
		return 0, c.cfg.Replicas, err
	}
	for _, s := range live {
		if p.Nodes[s.Node()].State == coordinator.HolderPinned {
			held++
		}
	}
	return held, c.cfg.Replicas, nil
}

// Placed reports whether root is placed: a placement orders nodes to
// hold it, whether or not they do yet.
func (c *Control) Placed(ctx context.Context, root string) (bool, error) {
	_, ok, err := c.placement(ctx, root)
	return ok, err
}

// OpenCAR opens the CAR of root from the content store. When this
// gateway has none (the content was stored through another gateway of
// the cluster, or its copy was lost) it fetches the trustless CAR from a
// live node holding root, verifies it whole as a deploy's CAR is
// (internal/carcheck: every block hashed, the root asked for, nothing
// missing or extra) and keeps it in the content store; a node that sends
// anything else, or more than may be stored (the larger of
// MaxContentBytes and MaxDeployBytes: the root may be an object or a
// deploy), is passed over for the next holder.
func (c *Control) OpenCAR(ctx context.Context, root string) (*os.File, error) {
	return c.openCAR(ctx, root, max(c.cfg.MaxContentBytes, c.cfg.MaxDeployBytes))
}

// OpenCARWithin is OpenCAR for content whose CAR the caller knows to be
// at most maxBytes (an S3 object's, from its size): a CAR fetched from a
// node is cut off past that too.
func (c *Control) OpenCARWithin(ctx context.Context, root string, maxBytes int64) (*os.File, error) {
	return c.openCAR(ctx, root, min(maxBytes, max(c.cfg.MaxContentBytes, c.cfg.MaxDeployBytes)))
}

func (c *Control) openCAR(ctx context.Context, root string, limit int64) (*os.File, error) {
	if parsed, err := cid.Parse(root); err != nil || parsed.String() != root {
		return nil, badRequest("not a CID: %q", clip(root))
	}
	f, err := os.Open(c.contentPath(root))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	urls, err := c.holderURLs(ctx, root)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		if err := c.fetchCAR(ctx, u, root, limit); err != nil {
			c.log.Warn("content from a holder refused", "root", root, "url", u, "err", err)
			errs = append(errs, err)
			continue
		}
		return os.Open(c.contentPath(root))
	}
	return nil, fmt.Errorf("%w: no CAR for %s here, and no live holder served it (%w)", ErrNotFound, root, errors.Join(errs...))
}

// holderURLs lists the trustless CAR URLs of root on the live nodes that
// hold it.
func (c *Control) holderURLs(ctx context.Context, root string) ([]string, error) {
	p, ok, err := c.placement(ctx, root)
	if err != nil || !ok {
		return nil, err
	}
	live, err := c.coord.LiveNodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range live {
		base := s.Record.Record.HTTP
		if p.Nodes[s.Node()].State != coordinator.HolderPinned || !strings.HasPrefix(base, "http") {
			continue
		}
		out = append(out, strings.TrimRight(base, "/")+"/ipfs/"+root+"?format=car&dag-scope=all")
	}
	return out, nil
}

// errHolderStalled: a holder sent too little of a CAR (HolderStall).
var errHolderStalled = errors.New("the node sent too little: abandoned for the next holder")

// fetchCAR fetches root's CAR from url and keeps it once verified. It
// reads no more than limit bytes (ErrTooLarge past it), and gives up on
// a node that sends less than 64 KiB in a HolderStall.
func (c *Control) fetchCAR(ctx context.Context, url, root string, limit int64) error {
	ctx, guard := stall.Watch(ctx, c.cfg.HolderStall, 64<<10, errHolderStalled)
	defer guard.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car;version=1;order=dfs;dups=n")
	nodeproto.SignGatewayRequest(req, c.cfg.RequestKey, c.cfg.Now())
	resp, err := c.fetchClient.Do(req)
	if err != nil {
		return guard.Err(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	got, _, _, err := c.stage(guard.Reader(resp.Body), false, limit)
	if err != nil {
		return guard.Err(err)
	}
	if got != root {
		_ = os.Remove(c.contentPath(got))
		return fmt.Errorf("the node sent the DAG of %s", got)
	}
	return nil
}
