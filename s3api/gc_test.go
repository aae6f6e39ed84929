package s3api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	gocid "github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// gcNetwork starts a devnet of its own (a gateway with the S3 API and
// two real nodes, R = 2) whose collector runs only when the test calls
// Collect, with the given grace period.
func gcNetwork(t *testing.T, grace time.Duration) *network {
	t.Helper()
	return ownNetwork(t, devnet.Config{CollectInterval: -1, CollectGrace: grace})
}

// eventually waits, within a bound scaled for a loaded machine, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, testutil.Scale(60*time.Second), what, cond)
}

// collect runs passes of the collector and adds up what they did.
func collect(t *testing.T, n *network, passes int) coordinator.CollectStats {
	t.Helper()
	var sum coordinator.CollectStats
	for range passes {
		st, err := n.d.Coordinator().Collect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sum.Candidates += st.Candidates
		sum.Stamped += st.Stamped
		sum.Marked += st.Marked
		sum.Kept += st.Kept
		sum.Collected += st.Collected
	}
	return sum
}

// gcBucket makes account name, a client with its key and its bucket
// name.
func gcBucket(t *testing.T, n *network, name string) (*s3.Client, api.S3Key) {
	t.Helper()
	k := n.account(t, name)
	c := client(n, k)
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return c, k
}

// collectOf runs passes of the collector and adds up what they did with
// roots alone: every change of a bucket also places a new bucket root,
// and the earlier ones are collected in their turn, which the tests of
// objects' content leave aside.
func collectOf(t *testing.T, n *network, passes int, roots ...string) coordinator.CollectStats {
	t.Helper()
	var sum coordinator.CollectStats
	for range passes {
		st, err := n.d.Coordinator().Collect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roots {
			switch st.Outcome[r] {
			case "":
				continue
			case "stamped":
				sum.Stamped++
			case "marked":
				sum.Marked++
			case "kept":
				sum.Marked++
				sum.Kept++
			case "collected":
				sum.Marked++
				sum.Collected++
			}
			sum.Candidates++
		}
	}
	return sum
}

// placement reads root's placement from the bus.
func placement(t *testing.T, n *network, root string) (coordinator.Placement, bool) {
	t.Helper()
	kv, err := n.d.Bus().KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), root)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return coordinator.Placement{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var p coordinator.Placement
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		t.Fatal(err)
	}
	return p, true
}

// leaves returns the CIDs of the raw leaf blocks of data imported with
// 256 KiB chunks.
func leaves(t *testing.T, data []byte) []gocid.Cid {
	t.Helper()
	var out []gocid.Cid
	for off := 0; off < len(data); off += 256 << 10 {
		c, err := cid.Sum(0x55, 0x1e, data[off:min(off+256<<10, len(data))])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, gocid.MustParse(c.String()))
	}
	return out
}

// onNodes counts the nodes that hold root as a pin, and the nodes that
// have every one of blocks as a file on their disk.
func onNodes(t *testing.T, n *network, root string, blocks []gocid.Cid) (pinned, stored int) {
	t.Helper()
	for _, nd := range n.d.Nodes() {
		if slices.Contains(nd.Pins(), root) {
			pinned++
		}
		all := true
		for _, b := range blocks {
			p, err := nd.BlockPath(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p); err != nil {
				all = false
			}
		}
		if all {
			stored++
		}
	}
	return pinned, stored
}

// putCID stores body under bucket/key through c and returns the object's CID.
func putCID(t *testing.T, c *s3.Client, bucket, key string, body []byte) string {
	t.Helper()
	var cidHdr, rootHdr string
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)},
		s3.WithAPIOptions(headerCatcher(&cidHdr, &rootHdr))); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return cidHdr
}

func del(t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	if _, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s/%s: %v", bucket, key, err)
	}
}

func getEqual(t *testing.T, c *s3.Client, bucket, key string, want []byte) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("get %s/%s: %d bytes, %v; want %d equal bytes", bucket, key, len(b), err, len(want))
	}
}

// held fails unless root is placed, held by both nodes, pinned by both
// and its blocks on both disks.
func held(t *testing.T, n *network, root string, data []byte) {
	t.Helper()
	if _, ok := placement(t, n, root); !ok {
		t.Fatalf("%s is not placed", root)
	}
	eventually(t, "both nodes hold "+root, func() bool {
		h, want, err := n.d.Control().Holders(t.Context(), root)
		pinned, stored := onNodes(t, n, root, leaves(t, data))
		return err == nil && h >= want && pinned == 2 && stored == 2
	})
}

// dropped fails unless root is not placed and both nodes dropped its pin
// and its blocks from their disks.
func dropped(t *testing.T, n *network, root string, data []byte) {
	t.Helper()
	if _, ok := placement(t, n, root); ok {
		t.Fatalf("%s is still placed", root)
	}
	eventually(t, "the nodes drop "+root+" and its blocks", func() bool {
		// The bucket's earlier roots reach the blocks too, until they
		// are collected in their turn.
		collect(t, n, 1)
		pinned, _ := onNodes(t, n, root, nil)
		if pinned > 0 {
			return false
		}
		for _, nd := range n.d.Nodes() {
			for _, b := range leaves(t, data) {
				p, _ := nd.BlockPath(b)
				if _, err := os.Stat(p); err == nil {
					return false
				}
			}
		}
		return true
	})
}

// collectedEvents returns the roots of the content.collected events on
// the bus.
func collectedEvents(t *testing.T, n *network) []string {
	t.Helper()
	var roots []string
	err := n.d.Bus().Follow(t.Context(), events.FollowOptions{Types: []events.Type{events.TypeContentCollected}, Last: 1000, NoWait: true}, func(ev events.Event) error {
		var c events.ContentCollected
		if err := ev.Decode(&c); err != nil {
			return err
		}
		roots = append(roots, c.Root)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

// (a) The content of a deleted object and of an overwritten one stays
// placed on the nodes until the collector runs; then it is unplaced, the
// nodes drop the pins and the blocks from their disks, and
// content.collected says so. What the bucket still names stays.
func TestCollectDeletedAndOverwrittenObjects(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, _ := gcBucket(t, n, "gc-a")
	gone, v1, v2, keep := random(600<<10), random(600<<10), random(600<<10), random(300<<10)
	goneCID := putCID(t, c, "gc-a", "gone.bin", gone)
	v1CID := putCID(t, c, "gc-a", "over.bin", v1)
	keepCID := putCID(t, c, "gc-a", "keep.bin", keep)
	v2CID := putCID(t, c, "gc-a", "over.bin", v2)
	del(t, c, "gc-a", "gone.bin")

	// Not referenced any more, still placed and stored.
	held(t, n, goneCID, gone)
	held(t, n, v1CID, v1)

	st := collectOf(t, n, 2, goneCID, v1CID, keepCID, v2CID)
	if st.Collected != 2 {
		dumpFailures(t, n)
		t.Fatalf("two passes: %+v; want the deleted and the overwritten content collected", st)
	}
	dropped(t, n, goneCID, gone)
	dropped(t, n, v1CID, v1)
	held(t, n, v2CID, v2)
	held(t, n, keepCID, keep)
	getEqual(t, c, "gc-a", "over.bin", v2)
	getEqual(t, c, "gc-a", "keep.bin", keep)
	// content.collected for each (and for the bucket's earlier roots),
	// never for what the bucket names.
	evs := collectedEvents(t, n)
	for _, r := range []string{goneCID, v1CID} {
		if !slices.Contains(evs, r) {
			t.Fatalf("no content.collected for %s: %v", r, evs)
		}
	}
	for _, r := range []string{keepCID, v2CID} {
		if slices.Contains(evs, r) {
			t.Fatalf("content.collected for %s, which the bucket names", r)
		}
	}
	// The gateway's metrics say so.
	resp, err := http.Get(n.d.Gateway().URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name, least := range map[string]float64{"verity_collector_passes_total": 2, "verity_collector_collected_total": 2, "verity_collector_unreferenced_roots": 0} {
		_, rest, ok := strings.Cut(string(metrics), "\n"+name+" ")
		v, err := strconv.ParseFloat(strings.SplitN(rest, "\n", 2)[0], 64)
		if !ok || err != nil || v < least {
			t.Fatalf("/metrics: %s %q, want at least %v:\n%s", name, strings.SplitN(rest, "\n", 2)[0], least, metrics)
		}
	}
	// What is referenced is never collected.
	if st := collectOf(t, n, 3, keepCID, v2CID); st.Collected != 0 || st.Candidates != 0 {
		t.Fatalf("later passes: %+v", st)
	}
	held(t, n, v2CID, v2)
}

// gatedStore is the devnet's content store, with a gate: the first time
// Holders finds an object's root (one StoreCAR returned, not a bucket
// root the server places on its own) held by its nodes, gate runs (and
// may block) before the answer goes back to the S3 API, which records
// the object next.
type gatedStore struct {
	s3api.ContentStore
	mu      sync.Mutex
	gate    func(ctx context.Context, root string)
	objects map[string]bool
}

func (g *gatedStore) StoreCAR(ctx context.Context, label, near string, car io.Reader) (string, error) {
	root, err := g.ContentStore.StoreCAR(ctx, label, near, car)
	if err == nil {
		g.mu.Lock()
		if g.objects == nil {
			g.objects = map[string]bool{}
		}
		g.objects[root] = true
		g.mu.Unlock()
	}
	return root, err
}

func (g *gatedStore) Holders(ctx context.Context, root string) (int, int, error) {
	held, want, err := g.ContentStore.Holders(ctx, root)
	if err == nil && held >= want {
		g.mu.Lock()
		var f func(context.Context, string)
		if g.objects[root] {
			f = g.gate
			g.gate = nil
		}
		g.mu.Unlock()
		if f != nil {
			f(ctx, root)
			if err := ctx.Err(); err != nil {
				return 0, want, err // the gateway stopped there
			}
		}
	}
	return held, want, err
}

// gatedServer runs a second S3 API on the devnet's bus and control plane
// (as a second gateway of a cluster would) with store as its content
// store, and returns a client of it for key k.
func gatedServer(t *testing.T, n *network, store s3api.ContentStore, k api.S3Key) (*s3.Client, *s3api.Server) {
	t.Helper()
	srv := sideServer(t, n, s3api.Config{Store: store, Name: "gated",
		Logger: slog.New(slog.NewTextHandler(n.logs, nil)).With("api", "s3-gated")})
	return sideClient(srv, k), srv
}

// sideServer runs another S3 API with cfg on the devnet's bus and control
// plane (its Listener, Keys, Bus and DataDir filled in), as a second
// gateway of a cluster would, until the test ends; setup (test hooks)
// runs on it before it starts.
func sideServer(t *testing.T, n *network, cfg s3api.Config, setup ...func(*s3api.Server)) *s3api.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener, cfg.Keys, cfg.Bus, cfg.DataDir = ln, n.d.Control(), n.d.Bus(), t.TempDir()
	srv, err := s3api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})
	return srv
}

// sideClient is a client of srv for key k; mod adjusts its options.
func sideClient(srv *s3api.Server, k api.S3Key, mod ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(srv.URL()),
		UsePathStyle: true,
	}, mod...)
}

// (b) A gateway that stops between the nodes' pins and the record (a
// second gateway of the cluster, closed while its PUT waits between the
// nodes holding the object and recording it) leaves placed content that
// nothing references: collected.
func TestCollectContentOfAbandonedPut(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, k := gcBucket(t, n, "gc-b")
	ctx := t.Context()
	body := random(700 << 10)
	atGate := make(chan string, 1)
	store := &gatedStore{ContentStore: n.d.Control(), gate: func(ctx context.Context, root string) {
		atGate <- root
		<-ctx.Done() // the gateway never gets further
	}}
	gc, srv := gatedServer(t, n, store, k)
	errc := make(chan error, 1)
	go func() {
		_, err := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("gc-b"), Key: aws.String("half.bin"), Body: bytes.NewReader(body)},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		errc <- err
	}()
	var root string
	select {
	case root = <-atGate:
	case err := <-errc:
		t.Fatalf("the PUT ended before the nodes held it: %v", err)
	}
	srv.Close() // the gateway stops
	if err := <-errc; err == nil {
		t.Fatal("the PUT to the stopped gateway succeeded")
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("gc-b"), Key: aws.String("half.bin")}); code(err) != "NotFound" && code(err) != "NoSuchKey" {
		t.Fatalf("head of the object never recorded: %v", err)
	}
	held(t, n, root, body)
	if st := collectOf(t, n, 2, root); st.Collected != 1 {
		dumpFailures(t, n)
		t.Fatalf("two passes: %+v; want the abandoned content collected", st)
	}
	dropped(t, n, root, body)
}

// raceSource is a reference source that references nothing and claims no
// label; while armed, its second call of a pass (the collector's last
// check, after its marks) runs during, before it returns.
type raceSource struct {
	calls  atomic.Int32
	during atomic.Pointer[func()]
}

func (r *raceSource) Claims(string) bool { return false }

func (r *raceSource) Referenced(context.Context) (map[string]bool, error) {
	if r.calls.Add(1) == 2 {
		if f := r.during.Swap(nil); f != nil {
			(*f)()
		}
	}
	return nil, nil
}

// (c) A PUT of the same bytes racing the sweep of their root never ends
// acknowledged with the content unplaced, whichever way they interleave:
//
//   - the PUT found the root placed and held, then the sweep unplaced it
//     (the nodes dropped it), then the PUT recorded the object: the PUT
//     places it again and answers only once the nodes hold it;
//   - the collector marked the root and checked the buckets, then the
//     whole PUT ran (the root placed and held, the object recorded),
//     then the collector deletes at its mark: the PUT found the mark and
//     cleared it, so the delete fails and the root stays.
func TestCollectRacingStoreOfSameBytes(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, k := gcBucket(t, n, "gc-c")
	ctx := t.Context()

	t.Run("sweep between held and record", func(t *testing.T) {
		body := random(600 << 10)
		root := putRacingSweep(t, n, c, k, "gc-c", body, nil)
		if st := collectOf(t, n, 2, root); st.Collected != 0 {
			t.Fatalf("a referenced root collected: %+v", st)
		}
	})

	t.Run("store between mark and delete", func(t *testing.T) {
		body := random(600 << 10)
		root := putCID(t, c, "gc-c", "y1", body)
		del(t, c, "gc-c", "y1")
		if st := collectOf(t, n, 1, root); st.Stamped != 1 {
			t.Fatalf("first pass: %+v", st)
		}
		race := &raceSource{}
		n.d.Coordinator().AddReferenceSource(race) // asked after the buckets
		var putErr error
		f := func() {
			// The collector has marked the root and read the buckets.
			if p, ok := placement(t, n, root); !ok || p.Collecting.IsZero() {
				putErr = errors.New("the root is not marked during the last check")
				return
			}
			_, putErr = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("gc-c"), Key: aws.String("y2"), Body: bytes.NewReader(body)})
		}
		race.during.Store(&f)
		st := collectOf(t, n, 1, root)
		if putErr != nil {
			t.Fatalf("the PUT during the sweep: %v", putErr)
		}
		if race.calls.Load() != 2 {
			t.Fatalf("the last check did not run: %d calls", race.calls.Load())
		}
		if st.Collected != 0 || st.Kept != 1 {
			dumpFailures(t, n)
			t.Fatalf("the sweep: %+v; want the root kept", st)
		}
		p, ok := placement(t, n, root)
		if !ok || !p.Collecting.IsZero() || !p.Unreferenced.IsZero() {
			t.Fatalf("placement after the sweep: %+v (placed %v)", p, ok)
		}
		held(t, n, root, body)
		getEqual(t, c, "gc-c", "y2", body)
	})
}

// (d) Content with several referents stays until the last one goes:
// the same bytes in two buckets of two accounts and copied under another
// key; the same CID placed for a site; a file of a deployed site stored
// as an object too (collecting the object's root leaves the site's
// blocks on the nodes).
func TestCollectKeepsSharedContent(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c1 := client(n, n.account(t, "gc-d1"))
	c2 := client(n, n.account(t, "gc-d2"))
	ctx := t.Context()
	for _, b := range []struct {
		c    *s3.Client
		name string
	}{{c1, "gc-d1"}, {c2, "gc-d2"}} {
		if _, err := b.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.name)}); err != nil {
			t.Fatal(err)
		}
	}
	shared := random(600 << 10)
	root := putCID(t, c1, "gc-d1", "s", shared)
	if got := putCID(t, c2, "gc-d2", "s", shared); got != root {
		t.Fatalf("the same bytes: %s and %s", root, got)
	}
	if _, err := c1.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("gc-d1"), Key: aws.String("s-copy"), CopySource: aws.String("gc-d1/s")}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		c           *s3.Client
		bucket, key string
		last        bool
	}{{c1, "gc-d1", "s", false}, {c1, "gc-d1", "s-copy", false}, {c2, "gc-d2", "s", true}} {
		del(t, step.c, step.bucket, step.key)
		st := collectOf(t, n, 2, root)
		if step.last {
			if st.Collected != 1 {
				t.Fatalf("the last referent deleted: %+v", st)
			}
			dropped(t, n, root, shared)
			continue
		}
		if st.Collected != 0 {
			t.Fatalf("%s/%s deleted, others remain: %+v", step.bucket, step.key, st)
		}
		held(t, n, root, shared)
	}

	// The same root placed for a site: never a candidate.
	site := random(300 << 10)
	car := filepath.Join(t.TempDir(), "site.car")
	src := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(src, site, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(car)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importer.WriteCAR(ctx, src, f, importer.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	siteRoot, err := n.d.Control().StoreCAR(ctx, "gcsite", "", f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the site's content placed", func() bool { // by the placement consumer, from the event
		_, ok := placement(t, n, siteRoot)
		return ok
	})
	held(t, n, siteRoot, site)
	if got := putCID(t, c1, "gc-d1", "site.bin", site); got != siteRoot {
		t.Fatalf("object %s, site content %s", got, siteRoot)
	}
	del(t, c1, "gc-d1", "site.bin")
	if st := collectOf(t, n, 2, siteRoot); st.Collected != 0 {
		t.Fatalf("a site's root collected: %+v", st)
	}
	held(t, n, siteRoot, site)

	// A file of a deployed site, stored as an object and deleted: the
	// object's root goes, the site's blocks stay on its holders.
	dir := t.TempDir()
	file := random(600 << 10)
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>gc</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	deployRoot, err := importer.WriteCAR(ctx, dir, &buf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.d.Control().DeployFor(ctx, "gcdeploy", "gc-d1", &buf); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deploy held", func() bool {
		h, want, err := n.d.Control().Holders(ctx, deployRoot.String())
		return err == nil && h >= want
	})
	fileRoot := putCID(t, c1, "gc-d1", "f.bin", file)
	del(t, c1, "gc-d1", "f.bin")
	if st := collectOf(t, n, 2, fileRoot); st.Collected != 1 {
		t.Fatalf("the object's root: %+v", st)
	}
	if _, ok := placement(t, n, fileRoot); ok {
		t.Fatal("the object's root is still placed")
	}
	eventually(t, "the object's pin dropped", func() bool {
		pinned, _ := onNodes(t, n, fileRoot, nil)
		return pinned == 0
	})
	if pinned, stored := onNodes(t, n, deployRoot.String(), leaves(t, file)); pinned != 2 || stored != 2 {
		t.Fatalf("the site's holders: %d pin it, %d have the file's blocks", pinned, stored)
	}
}

// (e) Nothing is collected within the grace period after its last
// reference went: a reader that fetched a root just before a change
// (the object's, or the bucket's earlier root) still finds it on the
// nodes. After it, both go: a bucket's history lists its earlier roots,
// but only the current one is referenced.
func TestCollectGraceAndHistory(t *testing.T) {
	grace := testutil.Scale(2 * time.Second)
	n := gcNetwork(t, grace)
	c, _ := gcBucket(t, n, "gc-e")
	ctx := t.Context()
	body := random(300 << 10)
	var objCID, oldRoot string
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("gc-e"), Key: aws.String("k"), Body: bytes.NewReader(body)},
		s3.WithAPIOptions(headerCatcher(&objCID, &oldRoot))); err != nil {
		t.Fatal(err)
	}
	// The bucket roots as the bucket-root placement will place them
	// (label s3_<bucket>): their blocks are not on nodes yet, so their
	// holders fail to pin; the collector looks at the references only.
	for _, r := range []string{oldRoot} {
		if _, err := n.d.Coordinator().Place(ctx, events.SiteDeployed{Site: "s3_gc-e", Root: r, Replicas: 1}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	del(t, c, "gc-e", "k")
	passes := 0
	for time.Since(t0) < grace {
		st := collectOf(t, n, 1, objCID, oldRoot)
		if time.Since(t0) >= grace {
			break // this pass may have run past the grace period
		}
		passes++
		if st.Collected != 0 {
			t.Fatalf("collected %v after the last reference went, within the %v grace period: %+v", time.Since(t0), grace, st)
		}
		if _, ok := placement(t, n, objCID); !ok {
			t.Fatal("the object's root unplaced within the grace period")
		}
		time.Sleep(grace / 10)
	}
	if passes < 2 {
		t.Logf("only %d passes within the grace period (a loaded machine)", passes)
	}
	eventually(t, "collected after the grace period", func() bool {
		collect(t, n, 1)
		_, ok := placement(t, n, objCID)
		return !ok
	})
	dropped(t, n, objCID, body)
	// The earlier bucket root is in the bucket's history, but not
	// referenced: it reaches the deleted object's blocks, so keeping it
	// would keep them. Collected after the grace period too.
	eventually(t, "the earlier bucket root collected", func() bool {
		collect(t, n, 1)
		_, ok := placement(t, n, oldRoot)
		return !ok
	})
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("gc-e")}); err != nil {
		t.Fatal(err)
	}
}

// fileCAR returns a CAR whose root is data imported as a single file: the
// root an S3 object of the same bytes has.
func fileCAR(t *testing.T, data []byte) (*bytes.Buffer, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), src, &buf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &buf, root.String()
}

// (f) A preview deployed with the same root as an S3 object (a single
// file's bytes, known to whoever deploys it: another account's public
// object) does not take the object's content with it when it expires,
// whichever came first; the preview's label goes and the object's
// content stays the collector's, collected once the object is deleted.
func TestCollectPreviewSharingAnObjectsRoot(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, _ := gcBucket(t, n, "gc-f")
	n.account(t, "gc-f-other")
	ctx := t.Context()
	for _, previewFirst := range []bool{false, true} {
		name := map[bool]string{false: "object first", true: "preview first"}[previewFirst]
		t.Run(name, func(t *testing.T) {
			body := random(600 << 10)
			car, root := fileCAR(t, body)
			preview := func() {
				if _, err := n.d.Control().DeployPreview(ctx, "gcprev", "gc-f-other", time.Nanosecond, car); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the preview placed", func() bool {
					p, ok := placement(t, n, root)
					return ok && slices.Contains(p.Sites, "gcprev")
				})
			}
			if previewFirst {
				preview()
			}
			if got := putCID(t, c, "gc-f", "same.bin", body); got != root {
				t.Fatalf("object %s, preview %s", got, root)
			}
			if !previewFirst {
				preview()
			}
			held(t, n, root, body)
			if err := n.d.Control().ExpirePreviews(ctx); err != nil {
				t.Fatal(err)
			}
			p, ok := placement(t, n, root)
			if !ok || slices.Contains(p.Sites, "gcprev") {
				t.Fatalf("after the preview expired: placement %+v (placed %v); want the object's, without the preview's label", p, ok)
			}
			held(t, n, root, body)
			getEqual(t, c, "gc-f", "same.bin", body)
			if st := collectOf(t, n, 2, root); st.Collected != 0 {
				t.Fatalf("a referenced object's root collected: %+v", st)
			}
			// Deleted, the object's content is the collector's: not leaked.
			del(t, c, "gc-f", "same.bin")
			if st := collectOf(t, n, 2, root); st.Collected != 1 {
				t.Fatalf("the deleted object's root: %+v", st)
			}
			dropped(t, n, root, body)
		})
	}
}

// (g) A bucket deleted and re-created under the same name (a dotted one:
// its label is s3_gc_g_x) by another account: the label is the same, the
// referents are the new bucket's. The first account's content goes; the
// same bytes stored by the second stay.
func TestCollectBucketRecreatedUnderTheSameName(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	a := client(n, n.account(t, "gc-g1"))
	b := client(n, n.account(t, "gc-g2"))
	ctx := t.Context()
	const bucket = "gc-g.x"
	if _, err := a.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	only, both := random(300<<10), random(300<<10)
	onlyRoot := putCID(t, a, bucket, "only", only)
	bothRoot := putCID(t, a, bucket, "both", both)
	del(t, a, bucket, "only")
	del(t, a, bucket, "both")
	if _, err := a.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if got := putCID(t, b, bucket, "mine", both); got != bothRoot {
		t.Fatalf("the same bytes: %s and %s", got, bothRoot)
	}
	if st := collectOf(t, n, 2, onlyRoot, bothRoot); st.Collected != 1 {
		t.Fatalf("two passes: %+v; want the first account's content only", st)
	}
	dropped(t, n, onlyRoot, only)
	held(t, n, bothRoot, both)
	getEqual(t, b, bucket, "mine", both)
}

// keepGate is the devnet's content store whose Keep runs at, then the
// real Keep with the context it was given, then closes done.
type keepGate struct {
	s3api.ContentStore
	at   func(ctx context.Context)
	done chan struct{}
}

func (g *keepGate) Keep(ctx context.Context, label, root string) (bool, error) {
	g.at(ctx)
	defer close(g.done)
	return g.ContentStore.Keep(ctx, label, root)
}

// (h) A client that goes away once its object is recorded (between the
// record and Keep) leaves the object recorded: Keep still runs, or the
// sweep that marked the root before the record deletes it, and the
// bucket names content no node holds.
func TestCollectKeepOutlivesTheRequest(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, k := gcBucket(t, n, "gc-h")
	ctx := t.Context()
	body := random(600 << 10)
	root := putCID(t, c, "gc-h", "h1", body)
	del(t, c, "gc-h", "h1")
	if st := collectOf(t, n, 1, root); st.Stamped != 1 {
		t.Fatalf("first pass: %+v", st)
	}
	reqCtx, cancelReq := context.WithCancel(ctx)
	defer cancelReq()
	store := &keepGate{ContentStore: n.d.Control(), done: make(chan struct{}), at: func(kctx context.Context) {
		cancelReq() // the client goes away, its object recorded
		select {
		case <-kctx.Done(): // the request's context: ended with it
		case <-time.After(testutil.Scale(2 * time.Second)): // one of its own
		}
	}}
	gc, _ := gatedServer(t, n, store, k)
	race := &raceSource{}
	n.d.Coordinator().AddReferenceSource(race) // asked after the buckets
	f := func() {
		_, err := gc.PutObject(reqCtx, &s3.PutObjectInput{Bucket: aws.String("gc-h"), Key: aws.String("h2"), Body: bytes.NewReader(body)},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			t.Error("the PUT whose client went away succeeded")
		}
		<-store.done // the gateway's Keep has returned
	}
	race.during.Store(&f)
	st := collectOf(t, n, 1, root)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("gc-h"), Key: aws.String("h2")}); err != nil {
		t.Fatalf("the object recorded before the client went away: %v", err)
	}
	if st.Collected != 0 {
		dumpFailures(t, n)
		t.Fatalf("the sweep: %+v; the recorded object's content collected", st)
	}
	held(t, n, root, body)
	getEqual(t, c, "gc-h", "h2", body)
}

// (i) The same bytes stored in many buckets (a folder marker, an empty
// object: the same root for everyone) do not add a label per bucket to
// their placement: one bucket's label is enough for what labels decide
// (whether the collector may look at it, whether a preview's expiry may
// unplace it), and a label per bucket would grow the placement past the
// bus's message size, failing every store of those bytes.
func TestCollectLabelsDoNotGrowWithBuckets(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c := client(n, n.account(t, "gc-i"))
	ctx := t.Context()
	var root string
	for _, b := range []string{"gc-i1", "gc-i2", "gc-i3"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		root = putCID(t, c, b, "folder/", nil)
	}
	p, ok := placement(t, n, root)
	if !ok || len(p.Sites) != 1 {
		t.Fatalf("placement of bytes stored in three buckets: labels %v (placed %v); want one", p.Sites, ok)
	}
}

// putRacingSweep stores body as x1 in bucket and deletes it, so that its
// root is stamped by a first pass; then PUTs the same bytes as x2 through
// a second gateway that stops once it found the root held and before it
// records it, has the sweep collect the root meanwhile (the nodes drop
// it), calls during (when set), lets the PUT go on and checks it was
// acknowledged with the root placed again, held by two nodes and read
// back byte-equal. It returns the root.
func putRacingSweep(t *testing.T, n *network, c *s3.Client, k api.S3Key, bucket string, body []byte, during func(root string)) string {
	t.Helper()
	root := putCID(t, c, bucket, "x1", body)
	del(t, c, bucket, "x1")
	if st := collectOf(t, n, 1, root); st.Stamped != 1 {
		t.Fatalf("first pass: %+v", st)
	}
	atGate, release := make(chan struct{}), make(chan struct{})
	store := &gatedStore{ContentStore: n.d.Control(), gate: func(context.Context, string) {
		close(atGate)
		<-release
	}}
	gc, _ := gatedServer(t, n, store, k)
	errc := make(chan error, 1)
	go func() {
		_, err := gc.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("x2"), Body: bytes.NewReader(body)},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 }) // a failure is not hidden by a retry
		errc <- err
	}()
	<-atGate // the PUT saw the root held, and has not recorded it
	if st := collectOf(t, n, 1, root); st.Collected != 1 {
		close(release)
		t.Fatalf("the sweep: %+v", st)
	}
	dropped(t, n, root, body)
	if during != nil {
		during(root)
	}
	close(release)
	if err := <-errc; err != nil {
		dumpFailures(t, n)
		t.Fatalf("the PUT: %v", err)
	}
	// Acknowledged: so placed and held again.
	if p, ok := placement(t, n, root); !ok || len(p.Holders(coordinator.HolderPinned)) < 2 {
		t.Fatalf("acknowledged PUT, placement %+v (placed %v)", p, ok)
	}
	held(t, n, root, body)
	getEqual(t, c, bucket, "x2", body)
	return root
}
