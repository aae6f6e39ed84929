package s3api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// servedCharged is what the ledger charged account for the bytes the S3
// API served of bucket (its storage charges left out).
func servedCharged(t *testing.T, n *network, account, bucket string) uint64 {
	t.Helper()
	es, err := n.d.Coordinator().Ledger().Statement(t.Context(), account, ledger.StatementQuery{Type: ledger.EntryCharge})
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, e := range es {
		if !strings.HasPrefix(e.Gateway, "s3-storage/") {
			sum += e.Sites[s3api.BillingLabel(bucket)]
		}
	}
	return sum
}

// A presigned GET URL handed to anyone (valid up to 7 days) must not turn
// the API into a free CDN: every byte served, ranges included, is charged
// to the bucket owner's account, whoever fetches it; HEAD serves no
// bytes and is not charged.
func TestGetsChargedToOwner(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "gus"))
	ctx := t.Context()
	const size = 100_000
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("gus-pub")}); err != nil {
		t.Fatal(err)
	}
	body := random(size)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("gus-pub"), Key: aws.String("v.bin"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	acctCharged := func() uint64 {
		a, err := n.d.Coordinator().Ledger().Account(ctx, "gus")
		if err != nil {
			t.Fatal(err)
		}
		return a.Charged
	}
	before, beforeAcct := servedCharged(t, n, "gus", "gus-pub"), acctCharged()

	ps := s3.NewPresignClient(c)
	get, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("gus-pub"), Key: aws.String("v.bin")}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const gets = 3
	for i := range gets {
		resp, err := http.Get(get.URL) // anonymous: no account of its own
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, body) {
			t.Fatalf("presigned GET %d: %d, %d bytes", i, resp.StatusCode, len(b))
		}
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("gus-pub"), Key: aws.String("v.bin"), Range: aws.String(fmt.Sprintf("bytes=10-%d", 10+99))})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("gus-pub"), Key: aws.String("v.bin")}); err != nil {
		t.Fatal(err)
	}
	// A handler counts its bytes once it has written them, which may be
	// just after its client read them: flush until they are all in.
	want := uint64(gets*size + 100)
	var got uint64
	testutil.Eventually(t, testutil.Scale(5*time.Second), "served bytes charged", func() bool {
		if err := s3api.FlushCharges(ctx, n.d.S3()); err != nil {
			t.Fatal(err)
		}
		got = servedCharged(t, n, "gus", "gus-pub") - before
		return got >= want
	})
	if got != want {
		t.Fatalf("charged %d bytes for serving, want %d (3 GETs of %d and a range of 100)", got, want, size)
	}
	if got := acctCharged() - beforeAcct; got != want {
		t.Fatalf("account charged %d, want %d", got, want)
	}
}
