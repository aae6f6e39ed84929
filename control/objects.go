package control

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/cid"
)

// The content store for content that is not a site's deploy (an S3
// object): the same staging, verification (internal/carcheck), CAR store
// nodes fetch from and placement as a deploy, without a site to publish.

// StoreCAR stages the CAR read from car as a deploy's is (verified whole,
// kept under DataDir/content for nodes to fetch) and announces it
// (site.deployed with Site set to label, which names no site: the
// placement is recorded under it) so that Replicas nodes are ordered to
// pin it. It returns the root; Holders tells when nodes hold it. A
// refused CAR leaves nothing behind.
func (c *Control) StoreCAR(ctx context.Context, label string, car io.Reader) (string, error) {
	root, n, blocks, err := c.stageCAR(car)
	if err != nil {
		return "", err
	}
	if p, ok, err := c.placement(ctx, root); err == nil && ok && p.Replicas >= c.cfg.Replicas {
		return root, nil // placed already: the same bytes stored before
	}
	if err := c.emitDeployed(ctx, label, root, n, blocks, false); err != nil {
		return "", err
	}
	return root, nil
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

// OpenCAR opens the CAR of root kept in the content store, verified when
// it was stored.
func (c *Control) OpenCAR(root string) (*os.File, error) {
	if parsed, err := cid.Parse(root); err != nil || parsed.String() != root {
		return nil, badRequest("not a CID: %q", clip(root))
	}
	f, err := os.Open(c.contentPath(root))
	if err != nil {
		return nil, fmt.Errorf("control: content %s: %w", root, err)
	}
	return f, nil
}
