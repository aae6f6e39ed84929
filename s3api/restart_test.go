package s3api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/internal/testutil"
)

// runDevnet starts a devnet with the S3 API over dir and returns it and
// a function that stops it.
func runDevnet(t *testing.T, dir string) (*network, func()) {
	t.Helper()
	d, err := devnet.New(t.Context(), devnet.Config{DataDir: dir, Listen: "127.0.0.1:0", S3Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := func() {
		cancel()
		<-done
		d.Close()
	}
	wctx, wcancel := context.WithTimeout(ctx, testutil.Scale(30*time.Second))
	defer wcancel()
	if err := d.WaitReady(wctx); err != nil {
		stop()
		t.Fatal(err)
	}
	admin, _ := os.ReadFile(filepath.Join(dir, "gateway", "admin-token"))
	return &network{d: d, admin: strings.TrimSpace(string(admin)), logs: &lockedBuffer{}}, stop
}

// A gateway stopped in the middle of uploads leaves no object and, once
// it starts again, no staged bytes: the multipart upload it was receiving
// is gone (NoSuchUpload), the object it never acknowledged does not
// exist, and what was stored before is intact.
func TestStoppedGatewayLeavesNoUpload(t *testing.T) {
	dir := t.TempDir()
	n, stop := runDevnet(t, dir)
	k := n.account(t, "judy")
	c := client(n, k)
	ctx := t.Context()
	b := aws.String("judy-b")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	kept := random(100 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("kept"), Body: bytes.NewReader(kept)}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("half")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(random(5 << 20))}); err != nil {
		t.Fatal(err)
	}
	staged := filepath.Join(dir, "gateway", "s3-uploads")
	// A PUT cut while its body was being staged.
	if err := os.WriteFile(filepath.Join(staged, "object-123"), []byte("half a body"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop()

	n, stop = runDevnet(t, dir)
	defer stop()
	c = client(n, k)
	if left, _ := os.ReadDir(staged); len(left) != 0 {
		t.Fatalf("%d staged entries left after the restart", len(left))
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId}); code(err) != "NoSuchUpload" {
		t.Fatalf("the cut upload: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("half")}); code(err) != "NotFound" {
		t.Fatalf("the cut object exists: %v", err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, kept) {
		t.Fatal("the stored object changed across the restart")
	}
}
