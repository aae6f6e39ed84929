package s3api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// An x-amz-* header the signature does not cover is refused, as S3 does:
// otherwise whoever holds a presigned PUT URL (handed out to upload one
// file) can add x-amz-copy-source and store any object of the signer's
// account under that key instead.
func TestUnsignedAmzHeaderRefused(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "uma"))
	ctx := t.Context()
	for _, b := range []string{"uma-private", "uma-inbox"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uma-private"), Key: aws.String("secret"), Body: strings.NewReader("payroll")}); err != nil {
		t.Fatal(err)
	}
	ps := s3.NewPresignClient(c)
	req, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uma-inbox"), Key: aws.String("upload.bin")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequestWithContext(ctx, "PUT", req.URL, bytes.NewReader(nil))
	r.Header.Set("X-Amz-Copy-Source", "/uma-private/secret")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := s3Code(t, resp); got != "AccessDenied" {
		t.Errorf("presigned PUT with an unsigned x-amz-copy-source: %q, want AccessDenied", got)
	}
	if o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uma-inbox"), Key: aws.String("upload.bin")}); err == nil {
		b, _ := io.ReadAll(o.Body)
		o.Body.Close()
		t.Fatalf("the presigned URL stored %q by copy", b)
	}
}
