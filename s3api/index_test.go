package s3api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/s3api"
)

// indexBucket creates bucket for a new account and stores one real
// object in it, whose CID (placed on the nodes) the index tests record
// under every key they make: the roots they make can be placed.
func indexBucket(t *testing.T, n *network, account, bucket string) (*s3.Client, api.S3Key, string, int64) {
	t.Helper()
	k := n.account(t, account)
	c := client(n, k)
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	cid := putCID(t, c, bucket, "seed", []byte("index entry"))
	return c, k, cid, int64(len("index entry"))
}

// idleServer is a second S3 API on the devnet's bus that is not run: its
// index and roots are driven directly (no root placed) and its handler
// served by httptest.
// With t nil (a benchmark's, kept across its runs), it is closed with
// the network.
func idleServer(t testing.TB, n *network) *s3api.Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		var dir string
		if dir, err = os.MkdirTemp("", "verity-s3-idle-*"); err == nil {
			var srv *s3api.Server
			srv, err = s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(), DataDir: dir, Name: "idle",
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err == nil {
				if t != nil {
					t.Cleanup(func() { srv.Close(); os.RemoveAll(dir) })
				}
				return srv
			}
		}
	}
	if t != nil {
		t.Fatal(err)
	}
	panic(err)
}

// shardNames lists the shards of bucket on the bus.
func shardNames(t *testing.T, n *network, bucket string) []string {
	t.Helper()
	kv, err := n.d.Bus().KV(events.BucketS3Index)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lister.Stop()
	var out []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, bucket+"/") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// checkIndex checks that bucket's index holds exactly want, in shards
// within bounds, no other shard of it on the bus, and that its root is
// the tree of those keys.
func checkIndex(t *testing.T, n *network, srv *s3api.Server, bucket string, want map[string]bool) []s3api.ShardInfo {
	t.Helper()
	shards, keys, root, rebuilt, legacy, err := s3api.IndexOf(t.Context(), srv, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if legacy {
		t.Fatal("the record still holds its index inline")
	}
	var lost, extra []string
	for k := range want {
		if !slices.Contains(keys, k) {
			lost = append(lost, k)
		}
	}
	for _, k := range keys {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(lost) > 0 || len(extra) > 0 || len(keys) != len(want) {
		t.Fatalf("index of %d keys, want %d: lost %d (%q), extra %d (%q)", len(keys), len(want), len(lost), lost[:min(3, len(lost))], len(extra), extra[:min(3, len(extra))])
	}
	if !slices.IsSorted(keys) {
		t.Fatal("the shards' keys are not in order")
	}
	var names []string
	for i, sh := range shards {
		if sh.Keys == 0 || sh.Keys > s3api.MaxShardKeys {
			t.Errorf("shard %d holds %d keys", i, sh.Keys)
		}
		if i == 0 && sh.From != "" || i > 0 && sh.From <= shards[i-1].From {
			t.Errorf("shard %d starts at %q after %q", i, sh.From, shards[max(i-1, 0)].From)
		}
		names = append(names, sh.Name)
	}
	slices.Sort(names)
	if got := shardNames(t, n, bucket); !slices.Equal(got, names) {
		t.Errorf("the bus holds %d shards of %s, its record names %d: a shard left behind or missing", len(got), bucket, len(names))
	}
	if root != rebuilt {
		t.Fatalf("the record's root %s is not the tree of its keys, %s", root, rebuilt)
	}
	return shards
}

// Writers on two gateways of one bus at once, to keys of one shard and
// of several, while shards split: every acknowledged put is in the
// index and every acknowledged delete gone (no lost update), each
// change answered its own root, and the record's root is the tree of
// the keys it ends with. The shards the losers of a compare-and-set
// wrote, and those replaced, are gone from the bus.
func TestIndexWritersAcrossGatewaysLoseNothing(t *testing.T) {
	n := startNetwork(t)
	_, k, cid, size := indexBucket(t, n, "ivan", "ivan-idx")
	g1 := n.d.S3()
	g2 := idleServer(t, n)
	ctx := t.Context()
	want := map[string]bool{"seed": true}
	// 1,000 keys to start: more than a shard holds, so split already.
	var fill []string
	for i := 0; i < 2000; i += 2 {
		fill = append(fill, fmt.Sprintf("k/%05d", i))
	}
	if err := s3api.FillIndex(ctx, g1, k.Account, "ivan-idx", fill, cid, size, uint64(size)); err != nil {
		t.Fatal(err)
	}
	for _, f := range fill {
		want[f] = true
	}
	before := checkIndex(t, n, g1, "ivan-idx", want)
	if len(before) < 2 {
		t.Fatalf("1,000 keys in %d shard(s)", len(before))
	}
	var (
		mu    sync.Mutex
		roots = map[string]string{}
		g     errgroup.Group
	)
	record := func(root string, key string, put bool) {
		mu.Lock()
		defer mu.Unlock()
		what := fmt.Sprintf("%s %v", key, put)
		if roots[root] != "" {
			t.Errorf("root %s answered twice: %s and %s", root, roots[root], what)
		}
		roots[root] = what
		want[key] = put
		if !put {
			delete(want, key)
		}
	}
	for w := range 8 {
		srv := g1
		if w%2 == 1 {
			srv = g2
		}
		g.Go(func() error {
			for i := range 80 {
				// Same shards: odd keys between the first ones; the last
				// shard: keys past every other, growing it to a split.
				key := fmt.Sprintf("k/%05d", 1+2*(w*80+i))
				if w >= 4 {
					key = fmt.Sprintf("z/%d/%03d", w, i)
				}
				root, err := s3api.PutKey(ctx, srv, k.Account, "ivan-idx", key, cid, size, uint64(size))
				if err != nil {
					return fmt.Errorf("put %s: %w", key, err)
				}
				record(root, key, true)
				if i%5 == 0 { // and delete one of the first keys
					old := fmt.Sprintf("k/%05d", 2*(w*80+i))
					root, err := s3api.DeleteKey(ctx, srv, k.Account, "ivan-idx", old)
					if err != nil {
						return fmt.Errorf("delete %s: %w", old, err)
					}
					record(root, old, false)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	after := checkIndex(t, n, g2, "ivan-idx", want)
	if len(after) <= len(before) {
		t.Errorf("%d shards before, %d after 320 keys more in the last one: no split", len(before), len(after))
	}
	// The API agrees: the object of a raced key, and the listing.
	c := client(n, k)
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ivan-idx"), Key: aws.String("z/5/079")})
	if err != nil || aws.ToInt64(head.ContentLength) != size {
		t.Fatalf("HEAD of a raced key: %v", err)
	}
	var listed []string
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("ivan-idx"), MaxKeys: aws.Int32(333)})
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Contents {
			listed = append(listed, aws.ToString(o.Key))
		}
	}
	if len(listed) != len(want) || !slices.IsSorted(listed) {
		t.Fatalf("listed %d keys (sorted: %v), the index holds %d", len(listed), slices.IsSorted(listed), len(want))
	}
}

// Listings across many shards: pages of every size with continuation
// tokens, prefixes that start and end inside shards, and delimiters
// whose common prefixes span shards, equal what the sorted keys give.
func TestListingAcrossShards(t *testing.T) {
	n := startNetwork(t)
	c, k, cid, size := indexBucket(t, n, "judy", "judy-idx")
	ctx := t.Context()
	keys := []string{"seed"}
	for i := range 1500 {
		keys = append(keys, fmt.Sprintf("a/%02d/%04d", i%7, i)) // 7 prefixes, each across shards
	}
	for i := range 900 {
		keys = append(keys, fmt.Sprintf("b/%04d", i))
	}
	keys = append(keys, "c", "d/e/f")
	if err := s3api.FillIndex(ctx, n.d.S3(), k.Account, "judy-idx", keys[1:], cid, size, uint64(size)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("judy-idx"), Key: aws.String("b/"), Body: strings.NewReader("")}); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, "b/")
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	if shards := checkIndex(t, n, n.d.S3(), "judy-idx", want); len(shards) < 5 {
		t.Fatalf("%d keys in %d shards", len(keys), len(shards))
	}
	slices.Sort(keys)
	expect := func(prefix, delim string) (contents, prefixes []string) {
		for _, k := range keys {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			if delim != "" {
				if j := strings.Index(k[len(prefix):], delim); j >= 0 {
					cp := k[:len(prefix)+j+len(delim)]
					if !slices.Contains(prefixes, cp) {
						prefixes = append(prefixes, cp)
					}
					continue
				}
			}
			contents = append(contents, k)
		}
		return contents, prefixes
	}
	for _, tc := range []struct {
		prefix, delim string
		page          int32
	}{
		{"", "", 1000}, {"", "", 77}, {"a/", "/", 2}, {"a/0", "/", 3}, {"", "/", 1},
		{"a/03/", "", 50}, {"b/", "", 128}, {"b/08", "", 7}, {"a/", "", 999}, {"zz", "", 10}, {"", "0", 5},
	} {
		t.Run(fmt.Sprintf("%q,%q,%d", tc.prefix, tc.delim, tc.page), func(t *testing.T) {
			var contents, prefixes []string
			in := &s3.ListObjectsV2Input{Bucket: aws.String("judy-idx"), Prefix: aws.String(tc.prefix), MaxKeys: aws.Int32(tc.page)}
			if tc.delim != "" {
				in.Delimiter = aws.String(tc.delim)
			}
			pages := s3.NewListObjectsV2Paginator(c, in)
			for i := 0; pages.HasMorePages(); i++ {
				if i > len(keys) {
					t.Fatal("more pages than keys")
				}
				p, err := pages.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if int(aws.ToInt32(p.KeyCount)) > int(tc.page) {
					t.Fatalf("page of %d entries, max %d", aws.ToInt32(p.KeyCount), tc.page)
				}
				for _, o := range p.Contents {
					contents = append(contents, aws.ToString(o.Key))
				}
				for _, cp := range p.CommonPrefixes {
					prefixes = append(prefixes, aws.ToString(cp.Prefix))
				}
			}
			wc, wp := expect(tc.prefix, tc.delim)
			if !slices.Equal(contents, wc) || !slices.Equal(prefixes, wp) {
				t.Fatalf("listed %d keys and %d prefixes %.5q, want %d and %d %.5q", len(contents), len(prefixes), prefixes, len(wc), len(wp), wp)
			}
		})
	}
}

// A bucket whose record holds its index inline, as the first version
// wrote it (a gateway upgraded with data on the bus), keeps every
// object: each is read, listed and referenced for the collector; the
// next change rewrites the index as shards, with every key, and the
// root stays the tree of the keys.
func TestLegacyIndexMigrated(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "kate")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("kate-old")}); err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]byte{}
	cids := map[string]string{}
	for i := range 6 {
		key := fmt.Sprintf("dir%d/file-%d.bin", i%2, i)
		bodies[key] = random(1000 + i)
		cids[key] = putCID(t, c, "kate-old", key, bodies[key])
	}
	srv := n.d.S3()
	if err := s3api.MakeLegacy(ctx, srv, "kate-old"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, legacy, err := s3api.IndexOf(ctx, srv, "kate-old"); err != nil || !legacy {
		t.Fatalf("not in the old form: %v", err)
	}
	// Read as it is: objects, listing, the collector's references.
	for key, body := range bodies {
		getEqual(t, c, "kate-old", key, body)
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("kate-old"), Delimiter: aws.String("/")})
	if err != nil || len(l.CommonPrefixes) != 2 {
		t.Fatalf("listing of the old form: %v, %d prefixes", err, len(l.CommonPrefixes))
	}
	refs, err := s3api.NewReferences(n.d.Bus())
	if err != nil {
		t.Fatal(err)
	}
	referenced, err := refs.Referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for key, cid := range cids {
		if !referenced[cid] {
			t.Fatalf("%s's content %s is not referenced in the old form", key, cid)
		}
	}
	// The next change migrates it.
	bodies["new"] = random(500)
	cids["new"] = putCID(t, c, "kate-old", "new", bodies["new"])
	want := map[string]bool{}
	for key := range bodies {
		want[key] = true
	}
	checkIndex(t, n, srv, "kate-old", want)
	for key, body := range bodies {
		getEqual(t, c, "kate-old", key, body)
	}
	if referenced, err = refs.Referenced(ctx); err != nil {
		t.Fatal(err)
	}
	for key, cid := range cids {
		if !referenced[cid] {
			t.Fatalf("%s's content %s is not referenced after the migration", key, cid)
		}
	}
	// A delete in the migrated index, through the API.
	del(t, c, "kate-old", "dir0/file-0.bin")
	delete(want, "dir0/file-0.bin")
	checkIndex(t, n, srv, "kate-old", want)
}

type benchBucket struct {
	srv    *s3api.Server
	key    api.S3Key
	bucket string
}

// benchBuckets are the buckets benchIndex filled, by size: a benchmark
// function runs more than once.
var benchBuckets sync.Map

// benchIndex fills a bucket of the shared devnet with n keys through an
// S3 API that is not run (no root placed) and returns it.
func benchIndex(b *testing.B, keys int) (*s3api.Server, api.S3Key, string, string) {
	const cid = "bafkr4ifrvq2uyfipw4ym63pjgg6v7y4wgmsqgw6zvyqkarlwyg6hldlzti" // any object's CID
	if v, ok := benchBuckets.Load(keys); ok {
		bb := v.(benchBucket)
		return bb.srv, bb.key, bb.bucket, cid
	}
	n := startNetwork(b)
	k := n.account(b, fmt.Sprintf("bench%d", keys))
	bucket := fmt.Sprintf("bench-idx-%d", keys)
	c := client(n, k)
	if _, err := c.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatal(err)
	}
	srv := idleServer(nil, n)
	batch := make([]string, 0, 5000)
	for i := range keys {
		// Two levels, as logs or photos are kept: 100 directories.
		batch = append(batch, fmt.Sprintf("d%02d/%07d.jpg", i%100, i))
		if len(batch) == cap(batch) || i == keys-1 {
			if err := s3api.FillIndex(b.Context(), srv, k.Account, bucket, batch, cid, 1000, 1000); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	benchBuckets.Store(keys, benchBucket{srv, k, bucket})
	return srv, k, bucket, cid
}

// What a PUT and a DELETE cost in the index and the root (no bytes):
// compare the sizes side by side.
func BenchmarkIndexPutDelete(b *testing.B) {
	for _, keys := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			srv, k, bucket, cid := benchIndex(b, keys)
			ctx := context.Background()
			// The first change after the fill builds the tree once.
			if _, err := s3api.PutKey(ctx, srv, k.Account, bucket, "warm", cid, 1000, 1000); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				key := fmt.Sprintf("d%02d/x%07d.jpg", i%100, i)
				if _, err := s3api.PutKey(ctx, srv, k.Account, bucket, key, cid, 1000, 1000); err != nil {
					b.Fatal(err)
				}
				if _, err := s3api.DeleteKey(ctx, srv, k.Account, bucket, key); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if _, err := s3api.DeleteKey(ctx, srv, k.Account, bucket, "warm"); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// Listing a bucket of 100,000 keys through the API, 1,000 a page.
func BenchmarkIndexList100k(b *testing.B) {
	srv, k, bucket, _ := benchIndex(b, 100_000)
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(hs.URL), UsePathStyle: true})
	b.ResetTimer()
	for range b.N {
		n := 0
		pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for pages.HasMorePages() {
			p, err := pages.NextPage(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Contents)
		}
		if n != 100_000 {
			b.Fatalf("listed %d keys", n)
		}
	}
}
