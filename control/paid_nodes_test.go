package control

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// Nodes that require payment serve their HTTP port to the platform's
// signed requests only (node.PaymentConfig.Require). The gateway
// process's parts sign with its payment key, so everything that reads a
// node over HTTP still works: the coordinator's audits, the gateway's
// answers from nodes, and a node repairing a block from another holder
// with the coordinator's grant. An unsigned GET gets 402.
func TestPaidNodesServeThePlatform(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	bus := openBus(t, "gw-paid")
	tg, _ := startStackWith(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin, RequestKey: key},
		gateway.Config{Payments: gateway.PaymentsConfig{Key: key}},
		func(c *coordinator.Config) { c.RequestKey = key })
	nodes := startNodesWith(t, tg, 2, node.PaymentConfig{Require: true})
	token := tg.createSite(t, "blog")
	files := sitetest.Files()
	carBytes, root := siteCAR(t, files)
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	waitFor(t, "both nodes to know the gateway key and hold the root", func() bool {
		for _, nd := range nodes {
			if !slices.Contains(nd.Pins(), root) {
				return false
			}
		}
		return true
	})
	if code, b := getRaw(t, nodes[0], root); code != http.StatusPaymentRequired {
		t.Fatalf("an unsigned GET of a paid node: %d %q", code, b)
	}
	for _, nd := range nodes {
		if err := tg.Coordinator().Audit(t.Context(), nd.HTTPURL(), root); err != nil {
			t.Fatalf("the audit of a paid node: %v", err)
		}
	}

	// The gateway's fallback, answered from the nodes.
	resp, body := tg.get(t, tg.SiteURL("blog")+strings.TrimPrefix(gateway.FallbackPrefix, "/")+"/"+root+"/index.html?format=car&dag-scope=entity")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), string(files["index.html"])) {
		t.Fatalf("the gateway's fallback from paid nodes: %d, %d bytes", resp.StatusCode, len(body))
	}

	// A block damaged on one node, repaired from the other.
	bad := nodes[0]
	damageBlock(t, bad, root)
	if err := tg.Coordinator().Audit(t.Context(), bad.HTTPURL(), root); err == nil {
		t.Fatal("the damaged block passed an audit")
	}
	waitFor(t, "the block repaired from the other paid node", func() bool {
		return tg.Coordinator().Audit(t.Context(), bad.HTTPURL(), root) == nil
	})
}
