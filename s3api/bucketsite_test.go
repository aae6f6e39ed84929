package s3api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/unixfs"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/s3api"
)

// putRoot stores body under key and returns the bucket's root after it.
func putRoot(t *testing.T, c *s3.Client, bucket, key string, body []byte) string {
	t.Helper()
	var cidHdr, root string
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)},
		s3.WithAPIOptions(headerCatcher(&cidHdr, &root)))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return root
}

// waitPinned waits until every node of the network holds root.
func (n *network) waitPinned(t *testing.T, root string) {
	t.Helper()
	n.eventually(t, 20*time.Second, root+" pinned on every node", func() error {
		held, err := n.d.Coordinator().PinnedLive(t.Context(), root)
		if err != nil {
			return err
		}
		if len(held) < len(n.d.Nodes()) {
			return fmt.Errorf("held by %v", held)
		}
		return nil
	})
}

// eventually is testutil.EventuallyErr that, when the wait fails, first
// logs the network's warnings and failures: what held it up.
func (n *network) eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testutil.Wait(timeout, cond); err != nil {
		dumpFailures(t, n)
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// fetchVerified fetches root/path from every node as the worker does
// (the trustless CAR, verified block by block) and checks the bytes.
func (n *network) fetchVerified(t *testing.T, root, path string, want []byte) {
	t.Helper()
	rc, err := cid.Parse(root)
	if err != nil {
		t.Fatal(err)
	}
	req := verify.Request{Root: rc, Path: strings.Split(path, "/")}
	for _, nd := range n.d.Nodes() {
		hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, strings.TrimRight(nd.HTTPURL(), "/")+req.Target(), nil)
		hr.Header.Set("Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("node %s: GET %s: %s %s", nd.HTTPURL(), req.Target(), resp.Status, b)
		}
		vr := verify.NewReader(resp.Body, req, verify.Options{})
		got, err := io.ReadAll(vr)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("node %s: %s/%s does not verify: %v", nd.HTTPURL(), root, path, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("node %s: %s/%s: %d bytes, want %d", nd.HTTPURL(), root, path, len(got), len(want))
		}
	}
}

// pinFetched sums the bytes the nodes fetched for pins.
func (n *network) pinFetched(t *testing.T) float64 {
	t.Helper()
	var sum float64
	for _, nd := range n.d.Nodes() {
		m, err := browser.Scrape(t.Context(), strings.TrimRight(nd.HTTPURL(), "/")+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sum += m.Sum("verity_node_pin_fetched_bytes_total", nil)
	}
	return sum
}

// A bucket's root is placed on the nodes: GET /ipfs/<root>/<key> on a
// node verifies and gives the object, for nested keys and for a
// HAMT-sharded directory; the root equals importing the same tree from
// disk; and a change moves only the blocks it made.
func TestBucketRootOnNodes(t *testing.T) {
	n := startNetwork(t)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("VERITY_TEST_LOGS") != "" {
			for _, l := range strings.Split(n.logs.String(), "\n") {
				if strings.Contains(l, "pin") || strings.Contains(l, "root") || strings.Contains(l, "placed") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					t.Log(l)
				}
			}
		}
	})
	c := client(n, n.account(t, "rooted"))
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("rooted")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"index.html": []byte("<!doctype html><title>bucket</title>"),
		"a/b/c.txt":  []byte("nested"),
		"big.bin":    random(700 << 10), // three blocks under a dag-pb root
	}
	var root string
	for k, b := range files {
		root = putRoot(t, c, "rooted", k, b)
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := importRoot(t, dir); root != want {
		t.Fatalf("bucket root %s, importing the tree gives %s", root, want)
	}
	n.waitPinned(t, root)
	for k, b := range files {
		n.fetchVerified(t, root, k, b)
	}
	// Past boxo's sharding threshold (256 KiB of names and CIDs): the
	// directory "many" is a HAMT (names too long for a file system here;
	// TestBucketRootIsTheImportedTree compares such a tree with the
	// importer's).
	long := func(i int) string { return fmt.Sprintf("many/%01010d", i) }
	for i := range 260 {
		files[long(i)] = []byte("same bytes") // stored once, placed once
		if i == 7 {
			files[long(i)] = []byte("seven")
		}
		root = putRoot(t, c, "rooted", long(i), files[long(i)])
	}
	n.waitPinned(t, root)
	if typ := dirType(t, n, root, "many"); typ != unixfs.THAMTShard {
		t.Fatalf("many is a UnixFS %v, want a HAMT shard", typ)
	}
	for _, k := range []string{"index.html", "a/b/c.txt", "big.bin", long(7), long(259)} {
		n.fetchVerified(t, root, k, files[k])
	}

	// One small key more: the nodes fetch the object and the directory
	// blocks on its path (the root and "a"), not the rest of the tree.
	before := n.pinFetched(t)
	root2 := putRoot(t, c, "rooted", "a/new.txt", []byte("new"))
	n.waitPinned(t, root2)
	moved := n.pinFetched(t) - before
	n.fetchVerified(t, root2, "a/new.txt", []byte("new"))
	n.fetchVerified(t, root2, "a/b/c.txt", files["a/b/c.txt"])
	// The whole directory CAR of the root is over 270 KB (the HAMT);
	// two nodes fetching the changed blocks move a few hundred bytes.
	whole := n.dirCARBytes(t, root2) * float64(len(n.d.Nodes()))
	if moved <= 0 || moved > 4<<10 {
		t.Fatalf("the nodes fetched %v bytes for a one-key change, want a few hundred", moved)
	}
	t.Logf("a one-key change moved %v bytes to %d nodes; the root's whole directory CAR to each: %v bytes (ratio %.4f)", moved, len(n.d.Nodes()), whole, moved/whole)
	// A change inside the HAMT moves its changed shard, not the others.
	before = n.pinFetched(t)
	root3 := putRoot(t, c, "rooted", long(3), []byte("changed"))
	n.waitPinned(t, root3)
	moved = n.pinFetched(t) - before
	n.fetchVerified(t, root3, long(3), []byte("changed"))
	// The change rewrites the shard holding the key and the path to it
	// (here the top shard, which holds most of the long names): what
	// moves is well under the whole.
	whole = n.dirCARBytes(t, root3) * float64(len(n.d.Nodes()))
	if moved <= 0 || moved > 0.6*whole {
		t.Fatalf("the nodes fetched %v bytes for a change in the HAMT, the whole directory CAR to each is %v", moved, whole)
	}
	t.Logf("a change in the HAMT moved %v bytes to %d nodes; the root's whole directory CAR to each: %v bytes (ratio %.4f)", moved, len(n.d.Nodes()), whole, moved/whole)
}

// siteStatus reads a site's status with token.
func (n *network) siteStatus(t *testing.T, token, site string) api.SiteStatus {
	t.Helper()
	var st api.SiteStatus
	if code := n.api(t, token, "GET", "/v1/sites/"+site, nil, &st); code != http.StatusOK {
		t.Fatalf("GET /v1/sites/%s: %d", site, code)
	}
	return st
}

// waitSiteRoot waits until site is published at root.
func (n *network) waitSiteRoot(t *testing.T, token, site, root string) api.SiteStatus {
	t.Helper()
	var st api.SiteStatus
	n.eventually(t, 60*time.Second, site+" published at "+root, func() error {
		st = n.siteStatus(t, token, site)
		if st.Site == nil || st.Site.Root != root {
			return fmt.Errorf("status %+v", st.Site)
		}
		return nil
	})
	return st
}

// createSite creates site for account and returns its deploy token.
func (n *network) createSite(t *testing.T, site, account string) string {
	t.Helper()
	var sc api.SiteCreated
	if code := n.api(t, n.admin, "POST", "/v1/sites", api.CreateSite{Name: site, Account: account}, &sc); code != http.StatusCreated {
		t.Fatalf("create site %s: %d", site, code)
	}
	return sc.Token
}

// Only the bucket's account may publish it, to a site of its own: a
// site of another account is refused (with its own token, and with the
// admin token), and nothing is bound or published.
func TestFollowBucketOfAnotherAccountRefused(t *testing.T) {
	n := startNetwork(t)
	victim := client(n, n.account(t, "victim"))
	n.account(t, "mallory")
	if _, err := victim.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("victim-private")}); err != nil {
		t.Fatal(err)
	}
	putRoot(t, victim, "victim-private", "secret.txt", []byte("not for mallory"))
	tok := n.createSite(t, "mallory-site", "mallory")
	for _, who := range []string{tok, n.admin} {
		if code := n.api(t, who, "POST", "/v1/sites/mallory-site/bucket", api.FollowBucket{Bucket: "victim-private"}, nil); code != http.StatusForbidden {
			t.Fatalf("following another account's bucket: %d, want 403", code)
		}
	}
	if code := n.api(t, tok, "POST", "/v1/sites/mallory-site/bucket", api.FollowBucket{Bucket: "no-such-bucket"}, nil); code != http.StatusNotFound {
		t.Fatalf("following no bucket: %d, want 404", code)
	}
	// Another site's token may not bind a bucket to this one either.
	if code := n.api(t, tok, "POST", "/v1/sites/demo/bucket", api.FollowBucket{Bucket: "victim-private"}, nil); code != http.StatusForbidden {
		t.Fatalf("binding with another site's token: %d, want 403", code)
	}
	st := n.siteStatus(t, tok, "mallory-site")
	if st.Deploy != nil || st.Site != nil {
		t.Fatalf("the refused site has a deploy or a root: %+v %+v", st.Deploy, st.Site)
	}
	// The victim's bucket follows nothing: its changes deploy nowhere.
	putRoot(t, victim, "victim-private", "later.txt", []byte("still private"))
	if st := n.siteStatus(t, tok, "mallory-site"); st.Deploy != nil || st.Site != nil {
		t.Fatalf("a change of the bucket reached the refused site: %+v %+v", st.Deploy, st.Site)
	}
}

// A site that follows a bucket is published at the bucket's root, and
// again at each change, once the nodes hold it; its history and rollback
// are a deploy's; a deploy of a CAR ends the following.
func TestSiteFollowsBucket(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "pub"))
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("pub-site")}); err != nil {
		t.Fatal(err)
	}
	root1 := putRoot(t, c, "pub-site", "index.html", []byte("<!doctype html><title>v1</title>"))
	tok := n.createSite(t, "pubsite", "pub")
	var d api.DeployRecord
	if code := n.api(t, tok, "POST", "/v1/sites/pubsite/bucket", api.FollowBucket{Bucket: "pub-site"}, &d); code != http.StatusOK {
		t.Fatalf("follow: %d", code)
	}
	if d.Bucket != "pub-site" || d.Root != root1 || d.Account != "pub" {
		t.Fatalf("follow answered %+v, want bucket pub-site at %s", d, root1)
	}
	n.waitSiteRoot(t, tok, "pubsite", root1)
	root2 := putRoot(t, c, "pub-site", "index.html", []byte("<!doctype html><title>v2</title>"))
	st := n.waitSiteRoot(t, tok, "pubsite", root2)
	if st.Site.Version != 2 || len(st.Site.History) != 2 || st.Site.History[1].Root != root1 {
		t.Fatalf("history %+v", st.Site.History)
	}
	n.fetchVerified(t, root2, "index.html", []byte("<!doctype html><title>v2</title>"))
	// Rollback, as for a deploy.
	var rec api.SiteRecord
	if code := n.api(t, tok, "POST", "/v1/sites/pubsite/rollback", nil, &rec); code != http.StatusOK || rec.Root != root1 {
		t.Fatalf("rollback: %d %+v", code, rec)
	}
	// The next change of the bucket publishes again.
	root3 := putRoot(t, c, "pub-site", "page.html", []byte("three"))
	n.waitSiteRoot(t, tok, "pubsite", root3)
	// The root's placement is labelled with the bucket and the site, and
	// the bucket says what it references.
	if p, ok := n.d.Coordinator().Placement(root3); !ok || !p.Partial || !slices.Contains(p.Sites, s3api.PlacementLabel("pub-site")) || !slices.Contains(p.Sites, "pubsite") {
		t.Fatalf("placement of %s: %+v", root3, p)
	}
	cur, hist, site, ok, err := n.d.S3().BucketRoots(t.Context(), "pub-site")
	if err != nil || !ok || cur != root3 || site != "pubsite" || len(hist) != 4 || hist[1] != root1 || hist[3] != root3 {
		t.Fatalf("BucketRoots: %s %v %q %v %v", cur, hist, site, ok, err)
	}

	// A deploy of a CAR ends the following: the bucket's next change is
	// not published to the site.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("deployed"), 0o644); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	deployed, err := importer.WriteCAR(t.Context(), dir, &car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.d.Control().DeployFor(t.Context(), "pubsite", "", &car); err != nil {
		t.Fatal(err)
	}
	n.waitSiteRoot(t, tok, "pubsite", deployed.String())
	root4 := putRoot(t, c, "pub-site", "page.html", []byte("four"))
	n.waitPinned(t, root4)
	st = n.siteStatus(t, tok, "pubsite")
	if st.Site.Root != deployed.String() || st.Deploy.Root != deployed.String() || st.Deploy.Bucket != "" {
		t.Fatalf("after a deploy, the bucket's change reached the site: %+v %+v", st.Site, st.Deploy)
	}
	// Following again publishes the bucket's current root.
	if code := n.api(t, tok, "POST", "/v1/sites/pubsite/bucket", api.FollowBucket{Bucket: "pub-site"}, &d); code != http.StatusOK || d.Root != root4 {
		t.Fatalf("follow again: %d %+v", code, d)
	}
	n.waitSiteRoot(t, tok, "pubsite", root4)
}

// dirType is the UnixFS type of the directory root/name, its block
// fetched from a node and checked against its CID.
func dirType(t *testing.T, n *network, root, name string) unixfs.DataType {
	t.Helper()
	u := strings.TrimRight(n.d.Nodes()[0].HTTPURL(), "/") + "/ipfs/" + root + "/" + name + "?format=car&dag-scope=block"
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cr, err := car.NewReader(resp.Body, car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	for {
		c, data, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(data); err != nil {
			t.Fatal(err)
		}
		if c.Equal(cr.Roots()[0]) {
			last = data
		}
	}
	nd, err := unixfs.DecodeNode(last)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := unixfs.DecodeData(nd.Data)
	if err != nil {
		t.Fatal(err)
	}
	return fs.Type
}

// dirCARBytes is the size of root's partial CAR (its directory blocks)
// in the gateway's content store.
func (n *network) dirCARBytes(t *testing.T, root string) float64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(n.d.DataDir(), "gateway", "content", root+".car"))
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.Size())
}
