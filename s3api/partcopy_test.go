package s3api_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// UploadPartCopy: parts copied from ranges of a stored object (and one
// sent between them) join into an object equal to those bytes; a range past the
// source, a malformed range, a source of another account's and a
// failed precondition are refused and add no part.
func TestUploadPartCopy(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "part-copy")
	c := client(n, k)
	ctx := t.Context()
	b := aws.String("part-copy")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	src := random(6<<20 + 17)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("src/a b.bin"), Body: bytes.NewReader(src)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("joined")})
	if err != nil {
		t.Fatal(err)
	}
	source := aws.String("part-copy/src/a%20b.bin")
	p1, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		CopySource: source, CopySourceRange: aws.String("bytes=0-5242879"), CopySourceIfMatch: put.ETag})
	if err != nil {
		t.Fatal(err)
	}
	sent := random(5 << 20)
	p2, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId, PartNumber: aws.Int32(2), Body: bytes.NewReader(sent)})
	if err != nil {
		t.Fatal(err)
	}
	p3, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId, PartNumber: aws.Int32(3),
		CopySource: source, CopySourceRange: aws.String("bytes=5242880-6291472")})
	if err != nil {
		t.Fatal(err)
	}

	other := client(n, n.account(t, "part-copy-other"))
	if _, err := other.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("part-copy-other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("part-copy-other"), Key: aws.String("secret"), Body: bytes.NewReader(random(100))}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		source, rng, ifMatch string
		want                 string
	}{
		"past the end":      {"part-copy/src/a%20b.bin", "bytes=0-6291473", "", "InvalidRange"},
		"malformed":         {"part-copy/src/a%20b.bin", "bytes=5-", "", "InvalidArgument"},
		"backwards":         {"part-copy/src/a%20b.bin", "bytes=9-5", "", "InvalidArgument"},
		"another account's": {"part-copy-other/secret", "", "", "AccessDenied"},
		"no such key":       {"part-copy/nope", "", "", "NoSuchKey"},
		"precondition":      {"part-copy/src/a%20b.bin", "", `"0123"`, "PreconditionFailed"},
	} {
		in := &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId, PartNumber: aws.Int32(4), CopySource: aws.String(tc.source)}
		if tc.rng != "" {
			in.CopySourceRange = aws.String(tc.rng)
		}
		if tc.ifMatch != "" {
			in.CopySourceIfMatch = aws.String(tc.ifMatch)
		}
		if _, err := c.UploadPartCopy(ctx, in); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Fatalf("parts after the refusals: %+v %v", lp, err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("joined"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.CopyPartResult.ETag}, {PartNumber: aws.Int32(2), ETag: p2.ETag}, {PartNumber: aws.Int32(3), ETag: p3.CopyPartResult.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("joined")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if want := bytes.Join([][]byte{src[:5<<20], sent, src[5<<20:]}, nil); !bytes.Equal(body, want) {
		t.Fatalf("the joined object: %d bytes, not the copied ranges and the sent part", len(body))
	}
}
