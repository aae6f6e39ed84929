package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// A node whose copy of a block is corrupt on disk never gets its bytes to
// the page: the node's block loader checks the hash and resets the stream
// (or, were the bytes sent, the worker's verifier rejects them); either way
// the worker reports the node and finishes the body from another source.
// TestBadBlockFromNodeIsCaught covers a node that does send altered bytes.
func TestCorruptBlockOnDisk(t *testing.T) { testCorruptBlockOnDisk(t, envConfig{}) }

// The same over WebRTC: nodes behind NAT, reached through the page's bridge.
func TestCorruptBlockOnDiskOverWebRTC(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	testCorruptBlockOnDisk(t, envConfig{webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
}

func testCorruptBlockOnDisk(t *testing.T, cfg envConfig) {
	e := newEnv(t, cfg)
	big := largest(assets(e.files))
	if big.Size <= 1<<20 {
		t.Fatalf("the demo site needs an asset larger than 1 MiB; the largest is %s (%d bytes)", big.Path, big.Size)
	}
	e.controlled()

	// The node the worker uses first is the one to corrupt.
	css := e.fetchFile(fileOf(t, e.files, "style.css"))
	first, _ := css.Timing("node")
	var bad *node.Node
	for _, n := range e.net.Nodes() {
		if nodeID(n) == first {
			bad = n
		}
	}
	if bad == nil {
		t.Fatalf("/style.css came from %q (Server-Timing %q), not from a node", first, css.Headers["server-timing"])
	}
	leaf := corruptLeaf(t, e, bad, big.Path)
	t.Logf("corrupted block %s of /%s on node %s", leaf, big.Path, first)

	gw0 := e.gatewayMetrics()
	res := e.fetchFile(big) // byte-equal: the bad bytes never reached the page
	t.Logf("/%s: Server-Timing %s", big.Path, res.Headers["server-timing"])

	// The worker reports the node to the gateway.
	byNode := map[string]string{"node": first}
	err := testutil.Wait(10*time.Second, func() error {
		if e.gatewayMetrics().Sum("verity_gateway_node_reports_total", byNode) > gw0.Sum("verity_gateway_node_reports_total", byNode) {
			return nil
		}
		return errors.New("no new report")
	})
	if err != nil {
		t.Errorf("gateway verity_gateway_node_reports_total{node=%q} did not grow (%v): %s", first, err, describe(e.gatewayMetrics().Select("verity_gateway_node_reports_total")))
	}

	reports, err := e.b.WorkerReports(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reports {
		if r.Node == first {
			found = true
			t.Logf("report: %s %s: %s", r.Reason, r.CID, r.Detail)
		}
	}
	if !found {
		t.Errorf("verity-reports has no report for node %s: %s", first, describe(reports))
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := workerStat(stats, "/"+big.Path); !ok || r.Error != "" || r.Bytes != big.Size || r.Node == first {
		t.Errorf("verity-stats for /%s = %+v (found %v): want %d bytes, no error, finished by a source other than %s", big.Path, r, ok, big.Size, first)
	}
}

func fileOf(t *testing.T, files []siteFile, p string) siteFile {
	t.Helper()
	for _, f := range files {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("the site has no %s", p)
	return siteFile{}
}

// leaves returns the raw leaf CIDs of the file at path, from node n's CAR
// of it.
func leaves(t *testing.T, e *env, n *node.Node, path string) []cid.CID {
	t.Helper()
	url := fmt.Sprintf("%s/ipfs/%s/%s?format=car&dag-scope=entity", strings.TrimRight(n.HTTPURL(), "/"), e.net.Root(), path)
	resp, err := browser.NewHTTPClient(30 * time.Second).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	r, err := car.NewReader(resp.Body, car.Config{})
	if err != nil {
		t.Fatalf("CAR of /%s: %v", path, err)
	}
	var out []cid.CID
	for {
		c, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("CAR of /%s: %v", path, err)
		}
		if c.Codec == cid.CodecRaw {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatalf("the CAR of /%s has no raw leaf", path)
	}
	return out
}

// corruptLeaf overwrites, on node n's disk, a raw leaf block of the file at
// path (the second one, or the only one) with random bytes of the same
// length, and returns its CID.
func corruptLeaf(t *testing.T, e *env, n *node.Node, path string) cid.CID {
	t.Helper()
	ls := leaves(t, e, n, path)
	leaf := ls[min(1, len(ls)-1)]
	gc, err := gocid.Cast(leaf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.BlockPath(gc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("block file of %s: %v", leaf, err)
	}
	garbage := make([]byte, st.Size())
	rand.Read(garbage)
	if err := os.WriteFile(p, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	return leaf
}
