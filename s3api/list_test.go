package s3api_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
)

// Listings page through more than 1,000 keys with continuation tokens,
// and roll keys up under a delimiter.
func TestListingsPageAndRollUp(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "lister"))
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("many")}); err != nil {
		t.Fatal(err)
	}
	// 1,100 keys under logs/, 5 under img/, one at the top. The same
	// bytes everywhere: one placement, so the test measures the index,
	// not the nodes.
	var keys []string
	for i := range 1100 {
		keys = append(keys, fmt.Sprintf("logs/%04d.txt", i))
	}
	for i := range 5 {
		keys = append(keys, fmt.Sprintf("img/%d/x.png", i))
	}
	keys = append(keys, "top.txt")
	var g errgroup.Group
	g.SetLimit(16)
	var mu sync.Mutex
	roots := map[string]bool{}
	for _, k := range keys {
		g.Go(func() error {
			var cidHdr, root string
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("many"), Key: aws.String(k), Body: strings.NewReader("same")},
				s3.WithAPIOptions(headerCatcher(&cidHdr, &root)))
			mu.Lock()
			roots[root] = true
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(roots) != len(keys) {
		t.Fatalf("%d writes answered %d distinct roots: each change makes its own", len(keys), len(roots))
	}
	var got []string
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Prefix: aws.String("logs/")})
	for i := 0; pages.HasMorePages(); i++ {
		if i > 10 {
			t.Fatal("more pages than keys allow")
		}
		p, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if want := keys[:1100]; !slices.Equal(got, want) {
		t.Fatalf("listed %d keys, want %d in order", len(got), len(want))
	}
	top, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, p := range top.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	if !slices.Equal(prefixes, []string{"img/", "logs/"}) || len(top.Contents) != 1 || aws.ToString(top.Contents[0].Key) != "top.txt" {
		t.Fatalf("top level: prefixes %v, %d keys", prefixes, len(top.Contents))
	}
	img, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Prefix: aws.String("img/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.CommonPrefixes) != 2 || !aws.ToBool(img.IsTruncated) || img.NextContinuationToken == nil {
		t.Fatalf("img/ page: %d prefixes, truncated %v", len(img.CommonPrefixes), aws.ToBool(img.IsTruncated))
	}
}
