package control

import (
	"io"
	"net/http"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// A holder whose stored root block is damaged on disk detects it on read
// (it refuses to serve it), drops it, asks the coordinator for the other
// holders and fetches the block again from one, verified: the block is
// served again, verity_node_block_repairs_total counts it, and the node
// stays a holder that passes its audits.
func TestCorruptBlockRepaired(t *testing.T) {
	bus := openBus(t, "gw-repair")
	tg, _ := startStack(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{})
	nodes := startNodes(t, tg, 2)
	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	bad := nodes[0]
	rc := damageBlock(t, bad, root)
	get := func() (int, []byte) { return getRaw(t, bad, root) }
	if code, _ := get(); code == http.StatusOK {
		t.Fatal("the damaged block was served")
	}
	waitFor(t, "the block repaired and served again", func() bool {
		code, b := get()
		if code != http.StatusOK {
			return false
		}
		sum, err := rc.Prefix().Sum(b)
		return err == nil && sum.Equals(rc)
	})
	waitFor(t, "the repair counted", func() bool {
		resp, err := http.Get(bad.HTTPURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), "verity_node_block_repairs_total 1")
	})
	if err := tg.Coordinator().Audit(t.Context(), bad.HTTPURL(), root); err != nil {
		t.Fatalf("the repaired node fails an audit: %v", err)
	}
}

// damageBlock replaces nd's stored copy of block c with other bytes under
// the same key, as a disk fault would, and returns c parsed.
func damageBlock(t *testing.T, nd *node.Node, c string) gocid.Cid {
	t.Helper()
	rc, err := gocid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	bs := nd.Blockstore()
	if err := bs.DeleteBlock(t.Context(), rc); err != nil {
		t.Fatal(err)
	}
	junk, err := blocks.NewBlockWithCid([]byte("damaged on disk"), rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Put(t.Context(), junk); err != nil {
		t.Fatal(err)
	}
	return rc
}

// getRaw GETs block c's raw bytes from nd's HTTP port, unsigned, and
// returns the status and body.
func getRaw(t *testing.T, nd *node.Node, c string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, nd.HTTPURL()+"/ipfs/"+c+"?format=raw", nil)
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
