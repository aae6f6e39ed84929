package s3api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/verity-cdn/verity/s3api"
)

// A PUT and a multipart object have limits of their own, as in S3 (5 GiB
// and 5 TiB), here lowered: a multipart object larger than a PUT may be
// is accepted; a PUT past its limit, a part past it, and the part that
// would take the multipart object past its limit are refused with
// EntityTooLarge, and leave nothing behind.
func TestObjectAndMultipartLimits(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "limits")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(), Name: "limits",
		DataDir: dir, MaxObjectBytes: 6 << 20, MaxMultipartBytes: 16 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true, RetryMaxAttempts: 1})
	ctx := t.Context()
	b := aws.String("limits-b")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	staged := func() []string {
		var out []string
		_ = filepath.WalkDir(filepath.Join(dir, "s3-uploads"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}

	// A PUT: up to 6 MiB.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("put-ok"), Body: bytes.NewReader(random(6 << 20))}); err != nil {
		t.Fatalf("a PUT at the limit: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("put-big"), Body: bytes.NewReader(random(6<<20 + 1))}); code(err) != "EntityTooLarge" {
		t.Fatalf("a PUT past the limit: %v", err)
	}

	// A multipart object of 13 MiB, past the PUT's limit: accepted.
	parts := [][]byte{random(5 << 20), random(5 << 20), random(3 << 20)}
	body := multipart(t, c, b, "mp-ok", parts)
	getEqual(t, c, "limits-b", "mp-ok", body)

	// One part past 6 MiB; and the part that takes the object past 16 MiB.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp-big")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp-big"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(random(6<<20 + 1))}); code(err) != "EntityTooLarge" {
		t.Fatalf("a part past the PUT's limit: %v", err)
	}
	for i := int32(1); i <= 4; i++ {
		_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp-big"), UploadId: up.UploadId, PartNumber: aws.Int32(i),
			Body: bytes.NewReader(random(5 << 20))})
		if i == 4 {
			if code(err) != "EntityTooLarge" {
				t.Fatalf("the part taking the object to 20 MiB, past 16: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	// The refused parts left nothing staged: the upload's record, the
	// three parts and theirs, nothing else.
	if got := staged(); len(got) != 7 {
		t.Fatalf("staged after the refused parts: %v", got)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("mp-big"), UploadId: up.UploadId}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"put-big", "mp-big"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)}); code(err) != "NotFound" && code(err) != "NoSuchKey" {
			t.Fatalf("%s after its refusal: %v", key, err)
		}
	}
	if got := staged(); len(got) != 0 {
		t.Fatalf("staged after the abort: %v", got)
	}
}

// multipart uploads parts as key and returns the object's bytes.
func multipart(t *testing.T, c *s3.Client, b *string, key string, parts [][]byte) []byte {
	t.Helper()
	ctx := t.Context()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	return bytes.Join(parts, nil)
}
