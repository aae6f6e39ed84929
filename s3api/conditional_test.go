package s3api_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// A conditional write (If-None-Match: *, If-Match) whose condition does
// not hold is refused with PreconditionFailed and leaves the key as it
// was; of writers racing to create a key, exactly one succeeds.
func TestConditionalWrites(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "cond"))
	ctx := t.Context()
	name := fmt.Sprintf("cond-%x", random(4)) // another on each run of the shared network
	b := aws.String(name)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	get := func(key string) string {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		body, _ := io.ReadAll(out.Body)
		return string(body)
	}
	put := func(key, body string, opt func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(body)}
		if opt != nil {
			opt(in)
		}
		return c.PutObject(ctx, in)
	}
	ifNoneMatch := func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }

	// If-None-Match: * creates a key once.
	first, err := put("lock", "first", ifNoneMatch)
	if err != nil {
		t.Fatalf("create with If-None-Match: *: %v", err)
	}
	if _, err := put("lock", "second", ifNoneMatch); code(err) != "PreconditionFailed" {
		t.Fatalf("overwrite with If-None-Match: *: %v, want PreconditionFailed", err)
	}
	if got := get("lock"); got != "first" {
		t.Fatalf("after a refused overwrite the key holds %q", got)
	}

	// If-Match writes over the object it names only.
	if _, err := put("lock", "third", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"0123456789abcdef0123456789abcdef"`) }); code(err) != "PreconditionFailed" {
		t.Fatalf("If-Match another ETag: %v, want PreconditionFailed", err)
	}
	if _, err := put("absent", "x", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag }); code(err) != "NoSuchKey" {
		t.Fatalf("If-Match on a missing key: %v, want NoSuchKey", err)
	}
	if _, err := put("lock", "fourth", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag }); err != nil {
		t.Fatalf("If-Match the current ETag: %v", err)
	}
	if got := get("lock"); got != "fourth" {
		t.Fatalf("after an If-Match write the key holds %q", got)
	}

	// CompleteMultipartUpload and CopyObject are writes of the key too.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("lock")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("lock"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("multipart")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("lock"), UploadId: up.UploadId, IfNoneMatch: aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}})
	if code(err) != "PreconditionFailed" {
		t.Fatalf("Complete with If-None-Match: * over a key: %v, want PreconditionFailed", err)
	}
	// Refused before its parts were joined, the upload is still open.
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("lock"), UploadId: up.UploadId}); err != nil {
		t.Fatalf("abort the upload a refused Complete left: %v", err)
	}
	if _, err := put("src", "copied", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("lock"), CopySource: aws.String(name + "/src"), IfNoneMatch: aws.String("*")})
	if code(err) != "PreconditionFailed" {
		t.Fatalf("copy with If-None-Match: * over a key: %v, want PreconditionFailed", err)
	}
	if got := get("lock"); got != "fourth" {
		t.Fatalf("after the refused Complete and copy the key holds %q", got)
	}

	// Writers racing to create one key: one wins, the others are refused.
	const racers = 4
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = put("race", fmt.Sprintf("writer %d", i), ifNoneMatch)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Fatalf("writers %d and %d both created the key", won, i)
		case code(err) != "PreconditionFailed":
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer created the key")
	}
	if got := get("race"); !bytes.Equal([]byte(got), []byte(fmt.Sprintf("writer %d", won))) {
		t.Fatalf("the key holds %q, the winner wrote %q", got, fmt.Sprintf("writer %d", won))
	}
}

// CopyObject copies only when its source's preconditions
// (x-amz-copy-source-if-match, -if-none-match, -if-unmodified-since,
// -if-modified-since) hold, as UploadPartCopy does: otherwise
// PreconditionFailed, and the destination is left as it was.
func TestCopySourceConditions(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "cond"))
	ctx := t.Context()
	name := fmt.Sprintf("copycond-%x", random(4))
	b := aws.String(name)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	src, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("src"), Body: strings.NewReader("source")})
	if err != nil {
		t.Fatal(err)
	}
	copyWith := func(opt func(*s3.CopyObjectInput)) error {
		in := &s3.CopyObjectInput{Bucket: b, Key: aws.String("dst"), CopySource: aws.String(name + "/src")}
		opt(in)
		_, err := c.CopyObject(ctx, in)
		return err
	}
	hourAgo := time.Now().Add(-time.Hour)
	for what, opt := range map[string]func(*s3.CopyObjectInput){
		"if-match another ETag":     func(in *s3.CopyObjectInput) { in.CopySourceIfMatch = aws.String(`"0123456789abcdef0123456789abcdef"`) },
		"if-none-match its ETag":    func(in *s3.CopyObjectInput) { in.CopySourceIfNoneMatch = src.ETag },
		"if-unmodified-since older": func(in *s3.CopyObjectInput) { in.CopySourceIfUnmodifiedSince = &hourAgo },
	} {
		if err := copyWith(opt); code(err) != "PreconditionFailed" {
			t.Errorf("copy %s: %v, want PreconditionFailed", what, err)
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("dst")}); code(err) != "NotFound" {
			t.Fatalf("copy %s: the destination exists: %v", what, err)
		}
	}
	if err := copyWith(func(in *s3.CopyObjectInput) { in.CopySourceIfMatch = src.ETag; in.CopySourceIfModifiedSince = &hourAgo }); err != nil {
		t.Fatalf("copy whose conditions hold: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("dst")}); err != nil {
		t.Fatalf("the copy whose conditions held: %v", err)
	}
}
