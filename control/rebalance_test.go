package control

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// Three sites on two nodes (two replicas each: both nodes hold all
// three); a third node joins and holdings move to it, one at a time,
// until every node holds two roots. Every root keeps two pinned holders,
// a node that gave its copy away unpins it and collects its blocks, and
// every site is still served.
func TestRebalanceOntoJoiningNode(t *testing.T) {
	bus := openBus(t, "gw-rebalance")
	tg, _ := startStackWith(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{},
		func(c *coordinator.Config) { c.RebalanceInterval = 50 * time.Millisecond })
	nodes := startNodes(t, tg, 2)
	roots := map[string]string{}
	for i := range 3 {
		site := fmt.Sprintf("site%d", i)
		token := tg.createSite(t, site)
		files := sitetest.Files()
		files["index.html"] = fmt.Appendf(nil, "<h1>site %d</h1>", i)
		carBytes, root := siteCAR(t, files)
		if resp, body := tg.api(t, http.MethodPost, "/v1/sites/"+site+"/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("deploy: %d %s", resp.StatusCode, body)
		}
		waitFor(t, "publish "+site, func() bool {
			st := tg.siteStatus(t, site, token)
			return st.Site != nil && st.Site.Root == root
		})
		roots[site] = root
	}
	for _, n := range nodes {
		if got := len(n.Pins()); got != 3 {
			t.Fatalf("node %s holds %d roots before the third joins, want 3", n.ID(), got)
		}
	}

	third, _ := startNodeAt(t, tg, t.TempDir())
	all := append(nodes, third)
	waitFor(t, "two roots on every node", func() bool {
		for _, n := range all {
			if len(n.Pins()) != 2 {
				return false
			}
		}
		for _, root := range roots {
			p, _ := tg.Coordinator().Placement(root)
			if len(p.Holders(coordinator.HolderPinned)) != 2 || len(p.Nodes) != 2 {
				return false
			}
		}
		return true
	})
	for site, root := range roots {
		p, _ := tg.Coordinator().Placement(root)
		for _, id := range p.Holders(coordinator.HolderPinned) {
			i := slices.IndexFunc(all, func(n *node.Node) bool { return n.ID() == id })
			if i < 0 || !slices.Contains(all[i].Pins(), root) {
				t.Fatalf("%s: placement lists %s, which does not pin it", site, id)
			}
			if h := p.Nodes[id]; h.Replaces != "" {
				t.Fatalf("%s: holder %s still replacing %s", site, id, h.Replaces)
			}
		}
		for _, n := range all {
			if !slices.Contains(p.Holders(coordinator.HolderPinned), n.ID()) {
				// The pin goes first, then the garbage collection.
				waitFor(t, site+": a node that gave its copy away collects its blocks", func() bool { return !holds(t, n, root) })
			}
		}
		if resp, _ := tg.get(t, tg.SiteURL(site)+"index.html"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d after rebalancing", site, resp.StatusCode)
		}
	}
}

// holds reports whether n stores root's block.
func holds(t *testing.T, n *node.Node, root string) bool {
	t.Helper()
	ok, err := n.Has(t.Context(), gocid.MustParse(root))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
