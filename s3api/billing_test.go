package s3api_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/testutil"
)

// Storage is charged to the bucket's account over time, in its statement
// under the bucket's name, and not for an empty bucket.
func TestStorageBilled(t *testing.T) {
	n := ownNetwork(t, devnet.Config{
		S3StoragePrice: 1 << 50, S3StorageInterval: 50 * time.Millisecond, // about 0.4 bytes per byte-second
	})
	d := n.d
	l := d.Coordinator().Ledger()
	if _, err := l.CreateAccount(t.Context(), "ivan", 0); err != nil {
		t.Fatal(err)
	}
	c := client(n, n.account(t, "ivan"))
	before, err := l.Account(t.Context(), "ivan")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"ivan-full", "ivan-empty"} {
		if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("ivan-full"), Key: aws.String("a"), Body: bytes.NewReader(random(1 << 20))}); err != nil {
		t.Fatal(err)
	}
	var charged uint64
	testutil.Eventually(t, testutil.Scale(10*time.Second), "storage charged", func() bool {
		es, err := l.Statement(t.Context(), "ivan", ledger.StatementQuery{Type: ledger.EntryCharge})
		if err != nil {
			return false
		}
		charged = 0
		for _, e := range es {
			if e.Gateway == "s3-storage/ivan-empty" {
				t.Fatalf("an empty bucket was charged: %+v", e)
			}
			if e.Gateway == "s3-storage/ivan-full" {
				charged += e.Sites["s3:ivan-full"]
			}
		}
		return charged > 100_000 // about a quarter of a second of 1 MiB
	})
	a, err := l.Account(t.Context(), "ivan")
	if err != nil || a.Balance > before.Balance-int64(charged) {
		t.Fatalf("balance %d after %d bytes charged: %v", a.Balance, charged, err)
	}
}

// A frozen account (no funds) may not store, nor have its objects
// served, but may list, HEAD and delete.
func TestFrozenAccountMayNotWriteOrServe(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "kim")
	c := client(n, k)
	ctx := t.Context()
	b := aws.String("kim-b")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("before"), Body: strings.NewReader("paid for")}); err != nil {
		t.Fatal(err)
	}
	// Spend it all: the account freezes.
	l := n.d.Coordinator().Ledger()
	a, err := l.Account(ctx, "kim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyCharge(ctx, ledger.Charge{Account: "kim", Gateway: "test", Seq: 1, Sites: map[string]uint64{"x": uint64(a.Balance) + 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("after"), Body: strings.NewReader("unpaid")}); code(err) != "AccountProblem" {
		t.Fatalf("put while frozen: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("kim-2")}); code(err) != "AccountProblem" {
		t.Fatalf("create bucket while frozen: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("kim-b/before")}); code(err) != "AccountProblem" {
		t.Fatalf("copy while frozen: %v", err)
	}
	if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp")}); code(err) != "AccountProblem" {
		t.Fatalf("multipart while frozen: %v", err)
	}
	// Its objects are not served on credit either (HEAD serves no bytes).
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("before")}); code(err) != "AccountProblem" {
		t.Fatalf("get while frozen: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("before")}); err != nil {
		t.Fatalf("head while frozen: %v", err)
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b}); err != nil {
		t.Fatalf("list while frozen: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("before")}); err != nil {
		t.Fatalf("delete while frozen: %v", err)
	}
}
