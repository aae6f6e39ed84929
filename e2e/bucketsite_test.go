package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil"
)

// A site that follows an S3 bucket: the demo site's files and a data
// file are PUT through the S3 API (the AWS SDK for Go), the site follows
// the bucket, and the page loads the data file through the worker from
// the nodes, verified, byte-equal. After the key is overwritten through
// the S3 API, the page gets the new bytes, again from a node.
func TestBucketSiteThroughWorker(t *testing.T) {
	e := newEnv(t, envConfig{s3: true})
	// A gateway with a short session ttl, so the worker sees each new
	// root soon after it is published (as TestRedeployFetchesOnlyChanged).
	const ttl = 2 * time.Second
	e.useGateway(gateway.Config{
		Sites:      e.net.Sites(),
		Nodes:      e.net.Coordinator(),
		Accounts:   e.net.Coordinator(),
		Bus:        e.net.Bus(),
		Name:       "gateway-short-ttl",
		DataDir:    t.TempDir(),
		SessionTTL: ttl,
	})
	ctl := e.net.Control()
	d, ok, err := ctl.DeployStatus(e.ctx(10*time.Second), devnet.SiteName)
	if err != nil || !ok {
		t.Fatalf("the demo site's deploy: %v %v", ok, err)
	}
	key, err := ctl.CreateS3Key(e.ctx(10*time.Second), d.Account)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key.ID, key.Secret, ""),
		BaseEndpoint: aws.String(e.net.S3().URL()),
		UsePathStyle: true,
	})
	const bucket = "demo-files"
	if _, err := c.CreateBucket(e.ctx(30*time.Second), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	put := func(k string, body []byte) string {
		t.Helper()
		var root string
		_, err := c.PutObject(e.ctx(60*time.Second), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body)},
			s3.WithAPIOptions(func(stack *middleware.Stack) error {
				return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("verity-root",
					func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
						out, md, err := next.HandleDeserialize(ctx, in)
						if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
							root = resp.Header.Get("X-Verity-Root")
						}
						return out, md, err
					}), middleware.After)
			}))
		if err != nil {
			t.Fatalf("PUT %s: %v", k, err)
		}
		return root
	}
	for _, f := range e.files {
		b, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		put(f.Path, b)
	}
	data := make([]byte, 600<<10) // three blocks
	rand.Read(data)
	root := put("data/blob.bin", data)
	if _, err := ctl.FollowBucket(e.ctx(30*time.Second), devnet.SiteName, bucket); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, "the bucket's root published", func() bool {
		return e.session().Root == root
	})

	e.controlled()
	fetch := func(want []byte) {
		t.Helper()
		res, err := e.b.Fetch(e.ctx(60*time.Second), "/data/blob.bin", &browser.FetchOptions{Cache: "no-store"})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		if res.Status != http.StatusOK || res.Error != "" || res.Size != int64(len(want)) || res.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("/data/blob.bin: status %d, error %q, %d bytes sha256 %s; want %d bytes sha256 %x", res.Status, res.Error, res.Size, res.SHA256, len(want), sum)
		}
		tr, _ := res.Timing("verity")
		n, _ := res.Timing("node")
		if tr != "webtransport" || !e.nodeIDs()[n] {
			t.Fatalf("/data/blob.bin: Server-Timing %q, want verity=webtransport and a node id", res.Headers["server-timing"])
		}
		t.Logf("/data/blob.bin: %d bytes, %s", res.Size, res.Headers["server-timing"])
	}
	fetch(data)

	// Overwrite the key through the S3 API: the site follows.
	data2 := make([]byte, 300<<10)
	rand.Read(data2)
	root2 := put("data/blob.bin", data2)
	testutil.Eventually(t, 60*time.Second, "the bucket's new root published", func() bool {
		return e.session().Root == root2
	})
	time.Sleep(ttl + 500*time.Millisecond) // the worker's session expires
	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	e.reloadResources()
	testutil.Eventually(t, 20*time.Second, "the worker's session on the new root", func() bool {
		return e.cacheStats().Root == root2
	})
	fetch(data2)
}
