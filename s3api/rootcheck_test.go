package s3api_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// A gateway stopped after it answered a change but before it placed the
// bucket's new root leaves the root unplaced, and the site that follows
// the bucket at the root before. A server started again finds the root
// not placed and places it: the nodes hold it and the site is published
// at it.
func TestRootLeftUnplacedIsPlacedOnStart(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "unplaced")
	c := client(n, k)
	const bucket, site = "unplaced-root", "unplacedsite"
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	root1 := putRoot(t, c, bucket, "index.html", []byte("<!doctype html><title>one</title>"))
	tok := n.createSite(t, site, "unplaced")
	if code := n.api(t, tok, "POST", "/v1/sites/"+site+"/bucket", api.FollowBucket{Bucket: bucket}, nil); code != 200 {
		t.Fatalf("follow: %d", code)
	}
	n.waitSiteRoot(t, tok, site, root1)

	// A second gateway answers a PUT and stops before it places the root.
	dir := t.TempDir()
	reached := make(chan string, 1)
	b, stop := startPeer(t, n, "gateway-roots", dir, "127.0.0.1:0", func(s *s3api.Server) {
		s3api.SetBeforeRootPlaced(s, func(ctx context.Context, b, root string) {
			if b != bucket {
				return
			}
			select {
			case reached <- root:
			default:
			}
			<-ctx.Done()
		})
	})
	two := []byte("<!doctype html><title>two</title>")
	root2 := putRoot(t, clientAt(b.URL(), k), bucket, "index.html", two)
	select {
	case r := <-reached:
		if r != root2 {
			t.Fatalf("the root about to be placed is %s, the PUT answered %s", r, root2)
		}
	case <-time.After(testutil.Scale(60 * time.Second)):
		t.Fatal("the root was never about to be placed")
	}
	stop()
	if _, ok := placement(t, n, root2); ok {
		t.Fatalf("%s placed by a stopped gateway", root2)
	}
	if st := n.siteStatus(t, tok, site); st.Site == nil || st.Site.Root != root1 {
		t.Fatalf("the site moved on without the root placed: %+v", st.Site)
	}

	// Started again, it places the root and publishes the site.
	startPeer(t, n, "gateway-roots", dir, "127.0.0.1:0")
	n.waitPinned(t, root2)
	n.waitSiteRoot(t, tok, site, root2)
	n.fetchVerified(t, root2, "index.html", two)
}
