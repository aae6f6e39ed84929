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
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
// it starts again, no staged bytes but those of the multipart upload it
// had acknowledged parts of: that upload goes on (its parts listed, one
// more sent, completed into the object), while a PUT body cut short, a
// part cut short, a part whose record was never written and a join in
// progress are removed; what was stored before is intact.
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
	part1 := random(5 << 20)
	p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(part1)})
	if err != nil {
		t.Fatal(err)
	}
	staged := filepath.Join(dir, "gateway", "s3-uploads")
	mp := filepath.Join(staged, "mp-"+*up.UploadId)
	// What the stop cut: a PUT's body, a part's body, a part renamed
	// into place but never recorded (not acknowledged), a join.
	for _, f := range []string{filepath.Join(staged, "object-123"), filepath.Join(mp, "incoming-456"), filepath.Join(mp, "part-00002"),
		filepath.Join(staged, "mp-0123456789abcdef0123456789abcdef.completing", "object")} {
		os.MkdirAll(filepath.Dir(f), 0o700)
		if err := os.WriteFile(f, []byte("half a body"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	n, stop = runDevnet(t, dir)
	defer stop()
	c = client(n, k)
	left, _ := os.ReadDir(staged)
	if len(left) != 1 || left[0].Name() != "mp-"+*up.UploadId {
		t.Fatalf("staged entries left after the restart: %v", left)
	}
	if files, _ := os.ReadDir(mp); len(files) != 3 { // upload.json, part-00001, part-00001.json
		t.Fatalf("the upload's directory holds %v", files)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId})
	if err != nil {
		t.Fatalf("the upload after the restart: %v", err)
	}
	if len(lp.Parts) != 1 || *lp.Parts[0].PartNumber != 1 || *lp.Parts[0].ETag != *p1.ETag {
		t.Fatalf("parts after the restart: %+v", lp.Parts)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("half")}); code(err) != "NotFound" {
		t.Fatalf("the unfinished object exists: %v", err)
	}
	part2 := random(1000)
	p2, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId, PartNumber: aws.Int32(2),
		Body: bytes.NewReader(part2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("half"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]byte{"kept": kept, "half": append(part1, part2...)} {
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(body, want) {
			t.Fatalf("%s: %d bytes, not the ones stored", key, len(body))
		}
	}
	if left, _ := os.ReadDir(staged); len(left) != 0 {
		t.Fatalf("staged entries left after the upload completed: %v", left)
	}
}
