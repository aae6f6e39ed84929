package control

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// deployGateway is a gateway stack on a fresh bus.
func deployGateway(t *testing.T, maxBytes int64) (*testStack, *events.Bus, string) {
	t.Helper()
	bus := openBus(t, "gw-deploy")
	dir := t.TempDir()
	tg, _ := startStack(t, bus, Config{DataDir: dir, AdminToken: testAdmin, MaxDeployBytes: maxBytes}, gateway.Config{})
	return tg, bus, dir
}

// startNodes runs n real nodes joined to tg's coordinator.
func startNodes(t *testing.T, tg *testStack, n int) []*node.Node {
	t.Helper()
	return startNodesWith(t, tg, n, node.PaymentConfig{})
}

// startNodesWith is startNodes with the nodes' payments configured by pc.
func startNodesWith(t *testing.T, tg *testStack, n int, pc node.PaymentConfig) []*node.Node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []*node.Node
	done := make(chan error, n)
	for i := range n {
		nd, err := node.New(node.Config{
			DataDir: filepath.Join(t.TempDir(), "node-"+strconv.Itoa(i+1)), Logger: log,
			Coordinator: tg.URL(), OperatorToken: tg.opToken, Payments: pc,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		go func() { done <- nd.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range nodes {
			<-done
		}
		for _, nd := range nodes {
			nd.Close()
		}
	})
	waitFor(t, "nodes to join", func() bool {
		live, _ := tg.Coordinator().LiveNodes(t.Context())
		return len(live) == n
	})
	return nodes
}

// siteCAR imports files and returns the CAR bytes and root.
func siteCAR(t *testing.T, files map[string][]byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), sitetest.Write(t, files), &buf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), root.String()
}

type carSection struct {
	c    cid.CID
	data []byte
}

func splitCAR(t *testing.T, b []byte) (cid.CID, []carSection) {
	t.Helper()
	r, err := car.NewReader(bytes.NewReader(b), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out []carSection
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			return r.Roots()[0], out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, carSection{c, data})
	}
}

func joinCAR(t *testing.T, root cid.CID, secs []carSection) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, []cid.CID{root})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if err := w.Put(s.c, s.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func (tg *testGateway) api(t *testing.T, method, path, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var hdr []string
	if token != "" {
		hdr = []string{"Authorization", "Bearer " + token}
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return tg.do(t, method, tg.URL()+path, r, hdr...)
}

func (tg *testGateway) createSite(t *testing.T, name string) string {
	t.Helper()
	resp, body := tg.api(t, http.MethodPost, "/v1/sites", testAdmin, []byte(`{"name":"`+name+`"}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create site: %d %s", resp.StatusCode, body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); err != nil || !strings.HasPrefix(out.Token, tokenPrefix) {
		t.Fatalf("create site: %s (%v)", body, err)
	}
	return out.Token
}

func (tg *testGateway) siteStatus(t *testing.T, name, token string) api.SiteStatus {
	t.Helper()
	resp, body := tg.api(t, http.MethodGet, "/v1/sites/"+name, token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("site status: %d %s", resp.StatusCode, body)
	}
	var st api.SiteStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A good deploy is verified, placed on both nodes, published only then,
// and served.
func TestDeployPublishesAfterReplication(t *testing.T) {
	tg, bus, dir := deployGateway(t, 0)
	nodes := startNodes(t, tg, 2)
	token := tg.createSite(t, "blog")
	files := sitetest.Files()
	carBytes, root := siteCAR(t, files)

	resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	var rec api.DeployRecord
	if err := json.Unmarshal(body, &rec); err != nil || rec.Root != root || rec.Replicas != 2 || rec.State != api.DeployPlacing {
		t.Fatalf("deploy answer %s (%v), want root %s", body, err, root)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root && st.Deploy.State == api.DeployPublished
	})
	for _, n := range nodes {
		if pins := n.Pins(); len(pins) != 1 || pins[0] != root {
			t.Fatalf("node %s pins %v, want [%s]", n.ID(), pins, root)
		}
	}
	// The site records the deploy's size: vouchers are sized to it.
	if st := tg.siteStatus(t, "blog", token); st.Site.Size != int64(len(carBytes)) || st.Site.History[0].Size != st.Site.Size {
		t.Fatalf("site size %d (history %d), want the CAR's %d", st.Site.Size, st.Site.History[0].Size, len(carBytes))
	}
	p, ok := tg.Coordinator().Placement(root)
	if !ok || len(p.Holders(coordinator.HolderPinned)) != 2 || p.Sites[0] != "blog" {
		t.Fatalf("placement %+v", p)
	}
	resp, body = tg.get(t, tg.SiteURL("blog")+"media/big.bin")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, files["media/big.bin"]) {
		t.Fatalf("served %d, %d bytes", resp.StatusCode, len(body))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(ents) != 0 {
		t.Fatalf("staged files left: %v", ents)
	}
	// The site.published event came after a content.replicated, and each
	// holder's came. A holder's event is emitted once its holding is
	// stored, so the publisher, which reads the placement on the first
	// event, may already find both holders and publish before the second
	// holder's event is on the bus: the order of those two is not fixed.
	var mu sync.Mutex
	var seen []events.Type
	sub, err := bus.Subscribe(t.Context(), "test-order", func(_ context.Context, ev events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev.Type)
		return nil
	}, events.TypeContentReplicated, events.TypeSitePublished)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 3
	})
	sub.Stop()
	mu.Lock()
	defer mu.Unlock()
	published := 0
	for _, ty := range seen[1:3] {
		if ty == events.TypeSitePublished {
			published++
		}
	}
	if seen[0] != events.TypeContentReplicated || published != 1 {
		t.Fatalf("events %v, want a content.replicated first, then the other holder's and site.published", seen)
	}

	// Deploying the same root again publishes nothing new.
	resp, body = tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("redeploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "republish", func() bool { return tg.siteStatus(t, "blog", token).Deploy.State == api.DeployPublished })
	if st := tg.siteStatus(t, "blog", token); st.Site.Version != 1 {
		t.Fatalf("version %d after redeploying the same root", st.Site.Version)
	}

	// A node without a valid signature gets no content.
	resp, _ = tg.get(t, tg.URL()+ContentPrefix+root+".car")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned content fetch: %d", resp.StatusCode)
	}
}

// Every refusal answers a clear JSON error and leaves nothing behind.
func TestDeployRefused(t *testing.T) {
	tg, bus, dir := deployGateway(t, 64<<10)
	token := tg.createSite(t, "blog")
	other := tg.createSite(t, "other")

	small := map[string][]byte{
		"index.html": []byte("<h1>hi</h1>"),
		"a.txt":      bytes.Repeat([]byte("a"), 300),
		"b.txt":      bytes.Repeat([]byte("b"), 400),
	}
	good, _ := siteCAR(t, small)
	root, secs := splitCAR(t, good)
	leaf := 0
	for i, s := range secs {
		if s.c.Codec == cid.CodecRaw {
			leaf = i
			break
		}
	}
	tampered := append([]carSection(nil), secs...)
	bad := bytes.Clone(secs[leaf].data)
	bad[0] ^= 1
	tampered[leaf] = carSection{secs[leaf].c, bad}
	missing := append(append([]carSection(nil), secs[:leaf]...), secs[leaf+1:]...)
	extraCID, _ := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte("unrelated"))
	extra := append(append([]carSection(nil), secs...), carSection{extraCID, []byte("unrelated")})
	var doubled []carSection // every block twice: twice the bytes to store and fetch
	for _, s := range secs {
		doubled = append(doubled, s, s)
	}
	big, _ := siteCAR(t, sitetest.Files())

	for _, tc := range []struct {
		name   string
		path   string
		token  string
		body   []byte
		status int
		code   string
		cid    string
	}{
		{"hash mismatch", "/v1/sites/blog/deploy", token, joinCAR(t, root, tampered), 422, carcheck.CodeHashMismatch, secs[leaf].c.String()},
		{"missing block", "/v1/sites/blog/deploy", token, joinCAR(t, root, missing), 422, carcheck.CodeMissingBlock, secs[leaf].c.String()},
		{"extra block", "/v1/sites/blog/deploy", token, joinCAR(t, root, extra), 422, carcheck.CodeExtraBlock, extraCID.String()},
		{"every block twice", "/v1/sites/blog/deploy", token, joinCAR(t, root, doubled), 400, carcheck.CodeDuplicate, secs[0].c.String()},
		{"not a CAR", "/v1/sites/blog/deploy", token, []byte("hello"), 400, carcheck.CodeMalformed, ""},
		{"over the limit", "/v1/sites/blog/deploy", token, big, 413, "", ""},
		{"invalid name", "/v1/sites/Blog_1/deploy", token, good, 400, "", ""},
		{"missing token", "/v1/sites/blog/deploy", "", good, 401, "", ""},
		{"wrong token", "/v1/sites/blog/deploy", "vdt_nope", good, 403, "", ""},
		{"other site's token", "/v1/sites/blog/deploy", other, good, 403, "", ""},
		{"unknown site", "/v1/sites/nosuch/deploy", token, good, 403, "", ""},
		{"create without admin", "/v1/sites", token, []byte(`{"name":"x"}`), 403, "", ""},
		{"create invalid name", "/v1/sites", testAdmin, []byte(`{"name":"-x"}`), 400, "", ""},
		{"create existing", "/v1/sites", testAdmin, []byte(`{"name":"blog"}`), 409, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tg.api(t, http.MethodPost, tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			var e api.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error (%v)", body, err)
			}
			if e.Code != tc.code || e.CID != tc.cid {
				t.Fatalf("code %q cid %q (%s), want %q %q", e.Code, e.CID, e.Error, tc.code, tc.cid)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	for _, b := range []string{events.BucketSites, events.BucketDeploys, events.BucketPlacements} {
		kv, _ := bus.KV(b)
		if keys, err := kv.ListKeys(t.Context()); err == nil {
			for k := range keys.Keys() {
				t.Errorf("bucket %s holds %q after refusals", b, k)
			}
		}
	}
	for _, sub := range []string{"uploads", "content"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s holds %d files after refusals", sub, len(ents))
		}
	}
}

// startNodeAt runs one real node on dir joined to tg's coordinator; stop
// makes it leave and waits for it.
func startNodeAt(t *testing.T, tg *testStack, dir string) (nd *node.Node, stop func()) {
	t.Helper()
	nd, err := node.New(node.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Coordinator: tg.URL(), OperatorToken: tg.opToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
		nd.Close()
	}
	t.Cleanup(stop)
	return nd, stop
}

// A lost holder is replaced so the root keeps R live copies; when it comes
// back it is reconciled with the placements and keeps what it holds.
func TestNodeLossReReplicatesAndReturnReconciles(t *testing.T) {
	tg, _, _ := deployGateway(t, 0)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := map[string]*node.Node{}
	stops := map[string]func(){}
	for _, d := range dirs[:2] {
		n, stop := startNodeAt(t, tg, d)
		nodes[n.ID()], stops[n.ID()] = n, stop
	}
	waitFor(t, "two nodes", func() bool {
		live, _ := tg.Coordinator().LiveNodes(t.Context())
		return len(live) == 2
	})
	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	third, _ := startNodeAt(t, tg, dirs[2])
	waitFor(t, "third node", func() bool {
		live, _ := tg.Coordinator().LiveNodes(t.Context())
		return len(live) == 3
	})
	if len(third.Pins()) != 0 {
		t.Fatal("the third node pinned without a loss")
	}

	// One holder leaves: node.lost → the third node gets the root.
	p, _ := tg.Coordinator().Placement(root)
	lost := p.Holders(coordinator.HolderPinned)[0]
	lostDir := nodes[lost].DataDir()
	stops[lost]()
	waitFor(t, "re-replication", func() bool {
		held, _ := tg.Coordinator().PinnedLive(t.Context(), root)
		return len(held) == 2 && slices.Contains(third.Pins(), root)
	})

	// It comes back: the placements still list it, so it keeps the root
	// (nothing fetched, nothing collected) and counts again.
	back, _ := startNodeAt(t, tg, lostDir)
	waitFor(t, "return", func() bool {
		held, _ := tg.Coordinator().PinnedLive(t.Context(), root)
		return len(held) == 3
	})
	rc, _ := gocid.Parse(root)
	if ok, err := back.Has(t.Context(), rc); err != nil || !ok || !slices.Contains(back.Pins(), root) {
		t.Fatalf("returning node lost its content: %v %v %v", ok, err, back.Pins())
	}
	resp, body := tg.get(t, tg.SiteURL("blog")+"media/big.bin")
	if resp.StatusCode != http.StatusOK || len(body) != len(sitetest.Files()["media/big.bin"]) {
		t.Fatalf("served %d, %d bytes", resp.StatusCode, len(body))
	}
}

// With more nodes than replicas, visitors are sent only to the nodes that
// hold the site's root.
func TestSessionListsHoldersOnly(t *testing.T) {
	tg, _, _ := deployGateway(t, 0)
	nodes := startNodes(t, tg, 3)
	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root && st.Deploy.State == api.DeployPublished
	})
	holders := map[string]bool{}
	for _, n := range nodes {
		if len(n.Pins()) == 1 {
			holders[n.ID()] = true
		}
	}
	if len(holders) != 2 {
		t.Fatalf("%d nodes hold the root, want the 2 replicas", len(holders))
	}
	s := tg.session(t, "blog")
	if len(s.Nodes) != 2 {
		t.Fatalf("session lists %d nodes, want the 2 holders", len(s.Nodes))
	}
	for _, n := range s.Nodes {
		if !holders[n.ID] {
			t.Fatalf("session lists %s, which does not hold %s", n.ID, root)
		}
	}
}
