package control

import (
	"net/http"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// GET /v1/nodes (admin) lists every node of the registry with its state,
// operator, last report and holdings; a node that left is listed as lost.
func TestNodesList(t *testing.T) {
	bus := openBus(t, "gw-nodes")
	tg, _ := startStack(t, bus, Config{AdminToken: testAdmin}, gateway.Config{})
	a := joinNode(t, tg, 41, sitetest.RecordAt(t, 41, "127.0.0.1"))
	joinNode(t, tg, 42, sitetest.RecordAt(t, 42, "127.0.0.1"))
	var list api.NodeList
	testutil.Eventually(t, 10*time.Second, "two live nodes listed", func() bool {
		tg.apiJSON(t, "GET", "/v1/nodes", testAdmin, "", http.StatusOK, &list)
		live := 0
		for _, n := range list.Nodes {
			if n.State == "live" {
				live++
			}
		}
		return live == 2
	})
	for _, n := range list.Nodes {
		if n.Version != "test" || n.Blocks != 7 || n.HTTP == "" || n.Operator == "" || n.LastSeen.IsZero() {
			t.Errorf("node %+v", n)
		}
	}
	a.Close()
	testutil.Eventually(t, 20*time.Second, "the node that left listed as lost, after the live one", func() bool {
		tg.apiJSON(t, "GET", "/v1/nodes", testAdmin, "", http.StatusOK, &list)
		return len(list.Nodes) == 2 && list.Nodes[0].State == "live" && list.Nodes[1].State == "lost" && list.Nodes[1].Reason != ""
	})
	// Admin only.
	tg.apiJSON(t, "GET", "/v1/nodes", "", "", http.StatusUnauthorized, nil)
	tg.apiJSON(t, "GET", "/v1/nodes", "vat_wrong", "", http.StatusForbidden, nil)
}
