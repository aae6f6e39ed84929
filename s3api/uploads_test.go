package s3api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// Open multipart uploads cost the gateway a directory and their staged
// parts: one account may not open them without bound, and an upload
// nobody completes or aborts is removed, with its parts, once no part
// came for UploadExpiry (not only when the gateway restarts).
func TestOpenUploadsBoundedAndExpired(t *testing.T) {
	n := startNetwork(t)
	ky, kz := n.account(t, "yuri"), n.account(t, "zeno")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const expiry = 500 * time.Millisecond
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(),
		DataDir: dir, MaxUploads: 3, UploadExpiry: expiry, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	cl := func(id, secret string) *s3.Client {
		return s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
			BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})
	}
	cy, cz := cl(ky.ID, ky.Secret), cl(kz.ID, kz.Secret)
	ctx := t.Context()
	for c, b := range map[*s3.Client]string{cy: "yuri-mp", cz: "zeno-mp"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(c *s3.Client, b string) (string, error) {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("k")})
		if err != nil {
			return "", err
		}
		return *up.UploadId, nil
	}
	var ids []string
	for range 3 {
		id, err := create(cy, "yuri-mp")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := create(cy, "yuri-mp"); code(err) != "InvalidRequest" {
		t.Fatalf("a 4th open upload with MaxUploads 3: %v, want InvalidRequest", err)
	}
	if _, err := create(cz, "zeno-mp"); err != nil {
		t.Fatalf("another account's upload: %v", err) // the bound is per account
	}
	if _, err := cy.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("yuri-mp"), Key: aws.String("k"), UploadId: aws.String(ids[0])}); err != nil {
		t.Fatal(err)
	}
	if _, err := create(cy, "yuri-mp"); err != nil {
		t.Fatalf("an upload after one was aborted: %v", err)
	}

	// ids[1] gets a part every expiry/5 for twice the expiry: it stays;
	// the others get none and go, with their staged parts.
	part := func(id string, num int32) error {
		_, err := cy.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("yuri-mp"), Key: aws.String("k"),
			UploadId: aws.String(id), PartNumber: aws.Int32(num), Body: bytes.NewReader(random(1000))})
		return err
	}
	if err := part(ids[2], 1); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := part(ids[1], int32(i+1)); err != nil {
			t.Fatalf("an upload receiving parts expired: %v", err)
		}
		time.Sleep(expiry / 5)
	}
	if err := part(ids[2], 2); code(err) != "NoSuchUpload" {
		t.Fatalf("a part for an abandoned upload: %v, want NoSuchUpload", err)
	}
	testutil.Eventually(t, testutil.Scale(5*time.Second), "abandoned uploads removed", func() bool {
		dirs, _ := filepath.Glob(filepath.Join(dir, "s3-uploads", "mp-*"))
		return len(dirs) == 1
	})
	l, err := cy.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("yuri-mp")})
	if err != nil || len(l.Uploads) != 1 || *l.Uploads[0].UploadId != ids[1] {
		t.Fatalf("uploads left: %+v, %v; want only %s", l, err, ids[1])
	}
	// Expired uploads no longer count against the bound.
	for range 2 {
		if _, err := create(cy, "yuri-mp"); err != nil {
			t.Fatalf("an upload after the others expired: %v", err)
		}
	}
}
