package control

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// A site deployed at a root already placed for another label (a bucket's
// root, placed for the bucket and then for the site that follows it),
// whose holders pass their audits after the publisher handled the
// site's site.deployed but before the placement carries the site's
// label, is published once the label is placed. The publisher's two
// chances both missed: on site.deployed the root was not yet held, and on
// each content.replicated the placement named only the other label. Here
// the content is held before the coordinator labels the placement with
// the site, and the publisher never sees the site.deployed (it saw it
// too early): only what follows the label may publish the site.
func TestSiteLabelledAfterItsRootWasHeldPublished(t *testing.T) {
	tg, _, _ := deployGateway(t, 0)
	startNodes(t, tg, 2)
	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	ctx := t.Context()

	// Held by both nodes for the other label.
	if got, err := tg.ctl.StoreCAR(ctx, "s3_media", "", bytes.NewReader(carBytes)); err != nil || got != root {
		t.Fatalf("store: %s %v, want %s", got, err, root)
	}
	waitFor(t, "both nodes hold the root", func() bool {
		held, want, err := tg.ctl.Holders(ctx, root)
		return err == nil && held == want
	})

	// The site's deploy of the root, placing, as Deploy records it.
	account, err := tg.ctl.deployAccount(ctx, "blog", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Update(ctx, tg.ctl.deploys, "blog", func([]byte) ([]byte, error) {
		return json.Marshal(api.DeployRecord{Site: "blog", Root: root, Size: int64(len(carBytes)), Replicas: 2,
			Account: account, State: api.DeployPlacing, Deployed: tg.ctl.cfg.Now().UTC()})
	}); err != nil {
		t.Fatal(err)
	}
	// The placement consumer's handling of the deploy's site.deployed.
	if _, err := tg.Coordinator().Place(ctx, events.SiteDeployed{Site: "blog", Root: root, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the site published at the root", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root && st.Deploy.State == api.DeployPublished
	})
}
