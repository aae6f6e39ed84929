package s3api_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/verity-cdn/verity/internal/api"
)

// A bucket's _headers and _redirects are a site's rules once a site
// follows it: in a bucket no site follows they are files like any; a site
// may not follow a bucket whose files do not parse (422, the parser's
// message); in a followed bucket a PUT or a copy of such a file that does
// not parse is refused with InvalidArgument, and the file stays as it was.
func TestSiteFilesOfAFollowedBucketChecked(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "sfiles"))
	ctx := t.Context()
	const b = "sfiles-b"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	bad, good := []byte("  X-A: 1\n"), []byte("/*\n  X-Frame-Options: DENY\n")
	putRoot(t, c, b, "_headers", bad) // no site follows: a file
	tok := n.createSite(t, "sfilessite", "sfiles")
	if code := n.api(t, tok, "POST", "/v1/sites/sfilessite/bucket", api.FollowBucket{Bucket: b}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("follow of a bucket whose _headers does not parse: %d", code)
	}
	if !n.logged("api request refused", "bad_site_file", "before any path") {
		t.Fatal("the refusal does not carry the parser's message")
	}
	if _, _, site, _, err := n.d.S3().BucketRoots(ctx, b); err != nil || site != "" {
		t.Fatalf("bound after a refused follow: %q %v", site, err)
	}
	root := putRoot(t, c, b, "_headers", good)
	if code := n.api(t, tok, "POST", "/v1/sites/sfilessite/bucket", api.FollowBucket{Bucket: b}, nil); code != http.StatusOK {
		t.Fatalf("follow: %d", code)
	}
	n.waitSiteRoot(t, tok, "sfilessite", root)

	refused := func(what string, err error, msg string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidArgument" || !strings.Contains(ae.ErrorMessage(), msg) {
			t.Fatalf("%s: %v, want InvalidArgument with %q", what, err, msg)
		}
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("_headers"), Body: bytes.NewReader(bad)})
	refused("a bad _headers", err, "before any path")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("_redirects"), Body: bytes.NewReader([]byte("\n\n/ok /fine\n/bad"))})
	refused("a bad _redirects", err, "line 4")
	putRoot(t, c, b, "notes/_headers", bad) // not the site's rules
	putRoot(t, c, b, "bad.txt", bad)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("_headers"), CopySource: aws.String(b + "/bad.txt")})
	refused("a copy of bad bytes to _headers", err, "before any path")
	getEqual(t, c, b, "_headers", good)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("_redirects")}); code(err) != "NotFound" {
		t.Fatalf("the refused _redirects: %v", err)
	}
}
