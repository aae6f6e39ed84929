package s3api_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// A part sent twice at once with other bytes leaves the upload with one
// of the two, and the record (ETag, size) of that one: the bytes of one
// and the record of the other made Complete store bytes that are not
// those of the ETag it was given, answered 200.
func TestPartSentTwiceAtOnce(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "parts")
	g, srv := gatedPartServer(t, n, s3api.Config{Store: n.d.Control(), Name: "partrace", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	staged, release, waiting := g.staged, g.release, g.waiting
	c := sideClient(srv, k)
	ctx := t.Context()
	b, key := aws.String(fmt.Sprintf("parts-%x", random(4))), aws.String("obj") // another on each run of the shared network
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	first, second := strings.Repeat("a", 1000), strings.Repeat("b", 1000) // one size: the record's size cannot tell them apart
	send := func(body string) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader(body)})
	}
	// Drain the waits so far: the next is the second sender's.
	for len(waiting) > 0 {
		<-waiting
	}
	g.holdNext()
	firstDone := make(chan error, 1)
	go func() {
		_, err := send(first)
		firstDone <- err
	}()
	deadline := time.After(testutil.Scale(30 * time.Second))
	select {
	case <-staged:
	case err := <-firstDone:
		t.Fatalf("the first sending ended before its record was written: %v", err)
	case <-deadline:
		t.Fatal("the first sending's bytes were never put in place")
	}
	for len(waiting) > 0 {
		<-waiting // the first sender's own wait
	}
	// The second sending either runs to its end meanwhile, or waits for
	// the first to commit.
	secondDone := make(chan error, 1)
	go func() {
		_, err := send(second)
		secondDone <- err
	}()
	var secondErr error
	secondEnded := false
	select {
	case secondErr = <-secondDone:
		secondEnded = true
	case <-waiting:
	case <-deadline:
		t.Fatal("the second sending neither ended nor waited")
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("first sending: %v", err)
	}
	if !secondEnded {
		secondErr = <-secondDone
	}
	if secondErr != nil {
		t.Fatalf("second sending: %v", secondErr)
	}
	// Whatever the upload holds, its record says what it is.
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: key, UploadId: up.UploadId})
	if err != nil || len(parts.Parts) != 1 {
		t.Fatalf("list parts: %v", err)
	}
	etag := aws.ToString(parts.Parts[0].ETag)
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(etag)}}}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	sum := md5.Sum(body)
	if want := `"` + hex.EncodeToString(sum[:]) + `"`; etag != want || !(bytes.Equal(body, []byte(first)) || bytes.Equal(body, []byte(second))) {
		t.Fatalf("the object holds %.8q... (MD5 %s), its part's ETag is %s", body, want, etag)
	}
}

// Two parts sent at once to an upload with room for one may not both be
// kept: each passes the room check made before its body is read, so the
// check is made again when the part is put in place. Otherwise K parts
// sent at once stage K times what MaxMultipartBytes allows, and Complete
// makes an object larger than it.
func TestPartsAtOnceBoundedByMultipartSize(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "partroom")
	const limit, size = 1500, 1000 // room for one part of size, not two
	g, srv := gatedPartServer(t, n, s3api.Config{Store: n.d.Control(), Name: "partroom", MaxMultipartBytes: limit,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	staged, release, waiting := g.staged, g.release, g.waiting
	c := sideClient(srv, k)
	ctx := t.Context()
	b, key := aws.String(fmt.Sprintf("partroom-%x", random(4))), aws.String("obj")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	send := func(num int32, fill string) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(num), Body: strings.NewReader(strings.Repeat(fill, size))})
	}
	for len(waiting) > 0 {
		<-waiting
	}
	g.holdNext()
	firstDone := make(chan error, 1)
	go func() {
		_, err := send(1, "a")
		firstDone <- err
	}()
	deadline := time.After(testutil.Scale(30 * time.Second))
	select {
	case <-staged:
	case err := <-firstDone:
		t.Fatalf("part 1 ended before its record was written: %v", err)
	case <-deadline:
		t.Fatal("part 1's bytes were never put in place")
	}
	for len(waiting) > 0 {
		<-waiting // part 1's own wait
	}
	// Part 2 passed the room check while part 1 had no record yet, read its
	// body and waits for the upload's lock.
	secondDone := make(chan error, 1)
	go func() {
		_, err := send(2, "b")
		secondDone <- err
	}()
	select {
	case <-waiting:
	case err := <-secondDone:
		t.Fatalf("part 2 ended while part 1 held the upload: %v", err)
	case <-deadline:
		t.Fatal("part 2 never waited for the upload's lock")
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("part 1: %v", err)
	}
	var ae smithy.APIError
	if err := <-secondDone; !errors.As(err, &ae) || ae.ErrorCode() != "EntityTooLarge" {
		t.Fatalf("part 2: %v, want EntityTooLarge", err)
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: key, UploadId: up.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range parts.Parts {
		total += aws.ToInt64(p.Size)
	}
	if total > limit || len(parts.Parts) != 1 {
		t.Fatalf("the upload keeps %d parts, %d bytes; at most %d fit", len(parts.Parts), total, limit)
	}
}

// partGate holds a side server's parts: the first commit of part 1 after
// holdNext stops once its bytes are in place (staged is closed) until
// release is closed; each wait for an upload's lock is sent on waiting.
type partGate struct {
	mu      sync.Mutex
	hold    bool
	staged  chan struct{}
	release chan struct{}
	waiting chan struct{}
}

func (g *partGate) holdNext() {
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()
}

// gatedPartServer starts a side server of cfg whose parts g holds.
func gatedPartServer(t *testing.T, n *network, cfg s3api.Config) (*partGate, *s3api.Server) {
	g := &partGate{staged: make(chan struct{}), release: make(chan struct{}), waiting: make(chan struct{}, 16)}
	srv := sideServer(t, n, cfg, func(srv *s3api.Server) {
		s3api.SetPartHooks(srv, func(_ string, num int) {
			g.mu.Lock()
			stop := g.hold && num == 1
			g.hold = false
			g.mu.Unlock()
			if stop {
				close(g.staged)
				<-g.release
			}
		}, func(string) { g.waiting <- struct{}{} })
	})
	return g, srv
}
