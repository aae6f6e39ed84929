package s3api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/verity-cdn/verity/control"
	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/s3api"
	"golang.org/x/sync/errgroup"
)

// Concurrent PUTs to one key: the object is the one whose change the bus
// ordered last, the one whose answered root is the bucket's root.
func TestConcurrentWritesLastWriterWins(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "erin"))
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("erin-b")}); err != nil {
		t.Fatal(err)
	}
	type answer struct{ cid, root, body string }
	var (
		mu      sync.Mutex
		answers []answer
		g       errgroup.Group
	)
	for i := range 8 {
		g.Go(func() error {
			body := fmt.Sprintf("writer %d", i)
			var cidHdr, root string
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("erin-b"), Key: aws.String("same"), Body: strings.NewReader(body)},
				s3.WithAPIOptions(headerCatcher(&cidHdr, &root)))
			mu.Lock()
			answers = append(answers, answer{cidHdr, root, body})
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var cidNow, rootNow string
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("erin-b"), Key: aws.String("same")}, s3.WithAPIOptions(headerCatcher(&cidNow, &rootNow)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	roots := map[string]bool{}
	var last *answer
	for i, a := range answers {
		roots[a.root] = true
		if a.root == rootNow {
			last = &answers[i]
		}
	}
	if len(roots) != len(answers) {
		t.Fatalf("%d writes answered %d roots: each is its own change", len(answers), len(roots))
	}
	if last == nil || last.cid != cidNow || last.body != string(b) {
		t.Fatalf("the object (%s, %q) is not the write that made the current root %s", cidNow, b, rootNow)
	}
}

// Virtual-hosted-style requests: BUCKET.<domain> names the bucket.
func TestVirtualHostedStyle(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "frank")
	addr := strings.TrimPrefix(n.d.S3().URL(), "http://")
	_, port, _ := net.SplitHostPort(addr)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr) // every name is the API here
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := s3.New(s3.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String("http://s3.localhost:" + port), HTTPClient: &http.Client{Transport: tr},
	})
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("frank-b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("frank-b"), Key: aws.String("v.txt"), Body: strings.NewReader("vhost")}); err != nil {
		t.Fatal(err)
	}
	// Path-style sees the same object.
	got, err := client(n, k).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("frank-b"), Key: aws.String("v.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "vhost" {
		t.Fatalf("got %q", b)
	}
}

// An object whose CAR this gateway does not have (stored through another
// gateway of the cluster, or lost here) is read from the nodes holding
// it, verified, and kept.
func TestReadFromHoldersWithoutLocalCopy(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "heidi"))
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("heidi-b")}); err != nil {
		t.Fatal(err)
	}
	body := random(700 << 10)
	var cidHdr, root string
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("heidi-b"), Key: aws.String("x.bin"), Body: bytes.NewReader(body)},
		s3.WithAPIOptions(headerCatcher(&cidHdr, &root))); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(n.d.DataDir(), "gateway", "content", cidHdr+".car")
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("heidi-b"), Key: aws.String("x.bin"), Range: aws.String("bytes=300000-")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body[300000:]) {
		t.Fatalf("got %d bytes, want %d", len(b), len(body)-300000)
	}
	if _, err := os.Stat(local); err != nil {
		t.Fatalf("the fetched CAR was not kept: %v", err)
	}
}

// An object larger than the deploy limit, whose CAR this gateway does not
// have, is read from the nodes all the same: the fetch is bounded by what
// the gateway may store (the object limits), not by a deploy's.
func TestReadFromHoldersOverDeployLimit(t *testing.T) {
	site := t.TempDir() // a site well under the deploy limit (the demo's video is not)
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<!doctype html><title>s</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := ownNetwork(t, devnet.Config{DemoDir: site, MaxDeployBytes: 2 << 20, S3MaxObjectBytes: 8 << 20, S3MaxMultipartBytes: 8 << 20})
	k := n.account(t, "ivan")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ivan-b")}); err != nil {
		t.Fatal(err)
	}
	body := random(5 << 20) // over the deploy limit
	var cidHdr, root string
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ivan-b"), Key: aws.String("big.bin"), Body: bytes.NewReader(body)},
		s3.WithAPIOptions(headerCatcher(&cidHdr, &root))); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(n.d.DataDir(), "gateway", "content", cidHdr+".car")
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ivan-b"), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatalf("got %d bytes, want the %d put", len(b), len(body))
	}
	// The fetch is bounded by the object's own CAR, from its size: a
	// second gateway without the CAR asks for at most that.
	fi, err := os.Stat(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	store := &boundStore{Control: n.d.Control()}
	gc, _ := gatedServer(t, n, store, k)
	got, err = gc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ivan-b"), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatalf("through the second gateway: got %d bytes, want the %d put", len(b), len(body))
	}
	if bound := store.bound.Load(); bound < fi.Size() || bound > fi.Size()+fi.Size()/64+1<<20 {
		t.Fatalf("the fetch of a %d-byte CAR was bounded at %d bytes", fi.Size(), bound)
	}
}

// boundStore is the control plane's content store, noting the bound its
// caller gives a CAR's fetch.
type boundStore struct {
	*control.Control
	bound atomic.Int64
}

func (s *boundStore) OpenCARWithin(ctx context.Context, root string, maxBytes int64) (*os.File, error) {
	s.bound.Store(maxBytes)
	return s.Control.OpenCARWithin(ctx, root, maxBytes)
}

// unreadableStore is the control plane's content store with no CAR to
// open (none here, no holder serving it).
type unreadableStore struct{ s3api.ContentStore }

func (unreadableStore) OpenCAR(ctx context.Context, root string) (*os.File, error) {
	return nil, fmt.Errorf("no CAR for %s here, and no live holder served it", root)
}

// A GET whose object cannot be read is answered with an error document
// the client reads whole: not with the object's Content-Length over a
// short error body.
func TestUnreadableObjectAnsweredWithWholeError(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "jana")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("jana-b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("jana-b"), Key: aws.String("x.bin"), Body: bytes.NewReader(random(300 << 10))}); err != nil {
		t.Fatal(err)
	}
	gc, _ := gatedServer(t, n, unreadableStore{n.d.Control()}, k)
	_, err := gc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("jana-b"), Key: aws.String("x.bin")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if code(err) != "InternalError" {
		t.Fatalf("got %v (code %q), want InternalError", err, code(err))
	}
}
