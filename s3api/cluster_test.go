package s3api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/s3api"
)

// startPeer starts a second S3 server of the shared network's cluster
// (another gateway's, on the same bus), named name, staging in dataDir;
// setup is called before it runs.
func startPeer(t *testing.T, n *network, name, dataDir, addr string, setup ...func(*s3api.Server)) (*s3api.Server, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{
		Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(), Name: name,
		DataDir: dataDir, Domain: "s3.localhost", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return srv, stop
}

func clientAt(url string, k api.S3Key) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(url), UsePathStyle: true})
}

// A multipart upload behind a load balancer: its parts, listing,
// completion and abort may reach any gateway of the cluster; those that
// do not hold its parts forward the request, signature and all, to the
// one that does, which checks it as its own. Forwarding grants nothing:
// another account is refused by the owner, a request forwarded once is
// not forwarded again. While the owner is down the upload answers 503
// (its parts are not lost); started again, it takes the upload up.
func TestMultipartAcrossGateways(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "cluster-mp")
	other := n.account(t, "cluster-other")
	peerDir := t.TempDir()
	b, stopB := startPeer(t, n, "gateway-b", peerDir, "127.0.0.1:0")
	peerAddr := strings.TrimPrefix(b.URL(), "http://")
	ca, cb := client(n, k), clientAt(b.URL(), k)
	ctx := t.Context()
	bucket, key := aws.String("cluster-mp"), aws.String("big/object.bin")
	if _, err := ca.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	up, err := cb.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{random(5 << 20), random(5 << 20), random(123)}
	etags := make([]*string, len(parts))
	for i, via := range []*s3.Client{ca, cb, ca} { // parts 1 and 3 through the gateway without the upload
		out, err := via.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		etags[i] = out.ETag
	}
	lp, err := ca.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Fatalf("parts listed through the other gateway: %v %v", lp, err)
	}

	// Listed by either gateway, once.
	for _, via := range []*s3.Client{ca, cb} {
		lu, err := via.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket})
		if err != nil || len(lu.Uploads) != 1 || *lu.Uploads[0].UploadId != *up.UploadId {
			t.Fatalf("uploads listed: %+v %v", lu, err)
		}
	}

	// Another account's key, through the gateway without the upload: the
	// owner refuses it.
	if _, err := clientAt(n.d.S3().URL(), other).UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: up.UploadId,
		PartNumber: aws.Int32(4), Body: bytes.NewReader(random(10))}); code(err) != "AccessDenied" {
		t.Fatalf("another account's part, forwarded: %v", err)
	}
	// A request marked as forwarded is not forwarded again.
	req, _ := http.NewRequest("GET", n.d.S3().URL()+"/cluster-mp/big/object.bin?uploadId="+*up.UploadId, nil)
	req.Header.Set(s3api.HeaderForwarded, "x")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode < 400 {
		t.Fatalf("a request marked forwarded: %v %v", resp, err)
	}

	// The owner down: 503, nothing lost; up again, the upload goes on.
	stopB()
	if _, err := ca.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: up.UploadId}); code(err) != "ServiceUnavailable" {
		t.Fatalf("the owner down: %v", err)
	}
	startPeer(t, n, "gateway-b", peerDir, peerAddr)
	var done []types.CompletedPart
	for i := range parts {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: etags[i]})
	}
	if _, err := ca.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete through the other gateway: %v", err)
	}
	got, err := ca.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Fatalf("the object: %d bytes, not the parts joined", len(body))
	}

	// Abort through the other gateway.
	up2, err := cb.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String("aborted"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: aws.String("aborted"), UploadId: up2.UploadId}); code(err) != "NoSuchUpload" {
		t.Fatalf("after an abort through the other gateway: %v", err)
	}
}
