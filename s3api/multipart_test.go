package s3api_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// A multipart upload: parts checked, listed, joined in order into one
// object byte-equal to them, with S3's multipart ETag; wrong completions
// refused with S3's codes; an aborted upload leaves nothing.
func TestMultipartUpload(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "grace"))
	ctx := t.Context()
	b := aws.String("grace-b")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{random(5 << 20), random(5 << 20), random(1234)}
	var done []types.CompletedPart
	md5s := md5.New()
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("big.bin"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		sum := md5.Sum(p)
		if aws.ToString(out.ETag) != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Fatalf("part %d ETag %s", i+1, aws.ToString(out.ETag))
		}
		md5s.Write(sum[:])
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("big.bin"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[2].Size) != 1234 {
		t.Fatalf("list parts: %v %v", lp, err)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(up.UploadId) {
		t.Fatalf("list uploads: %v", err)
	}
	// Another account cannot touch it.
	other := client(n, n.account(t, "grace-other"))
	if _, err := other.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("big.bin"), UploadId: up.UploadId}); code(err) != "AccessDenied" {
		t.Fatalf("another account lists the parts: %v", err)
	}
	complete := func(ps []types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("big.bin"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
		return err
	}
	wrongTag := append([]types.CompletedPart{}, done...)
	wrongTag[1] = types.CompletedPart{PartNumber: aws.Int32(2), ETag: aws.String(`"00000000000000000000000000000000"`)}
	if err := complete(wrongTag); code(err) != "InvalidPart" {
		t.Fatalf("a wrong ETag: %v", err)
	}
	if err := complete([]types.CompletedPart{done[1], done[0], done[2]}); code(err) != "InvalidPartOrder" {
		t.Fatalf("out of order: %v", err)
	}
	if err := complete([]types.CompletedPart{done[0], {PartNumber: aws.Int32(4), ETag: done[0].ETag}}); code(err) != "InvalidPart" {
		t.Fatalf("a part never sent: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("big.bin")}); code(err) != "NotFound" {
		t.Fatalf("a refused completion made an object: %v", err)
	}
	if err := complete(done); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Fatalf("got %d bytes, not the %d of the parts in order", len(body), 10<<20+1234)
	}
	if want := fmt.Sprintf(`"%x-3"`, md5s.Sum(nil)); aws.ToString(got.ETag) != want {
		t.Fatalf("ETag %s, want %s", aws.ToString(got.ETag), want)
	}
	if err := complete(done); code(err) != "NoSuchUpload" {
		t.Fatalf("completed twice: %v", err)
	}
	// A part below 5 MiB but the last: EntityTooSmall. Aborted: gone.
	up2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("small.bin")})
	if err != nil {
		t.Fatal(err)
	}
	var small []types.CompletedPart
	for i := range 2 {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("small.bin"), UploadId: up2.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: strings.NewReader("tiny")})
		if err != nil {
			t.Fatal(err)
		}
		small = append(small, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("small.bin"), UploadId: up2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: small}}); code(err) != "EntityTooSmall" {
		t.Fatalf("small parts: %v", err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("small.bin"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("small.bin"), UploadId: up2.UploadId}); code(err) != "NoSuchUpload" {
		t.Fatalf("aborted upload: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(n.d.DataDir(), "gateway", "s3-uploads", "*"))
	if len(left) != 0 {
		t.Fatalf("staged files left: %v", left)
	}
}
