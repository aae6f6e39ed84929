package s3api_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// An x-amz-* header the signature does not cover is refused, as S3 does:
// otherwise whoever holds a presigned PUT URL (handed out to upload one
// file) can add x-amz-copy-source and store any object of the signer's
// account under that key instead.
func TestUnsignedAmzHeaderRefused(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "uma"))
	ctx := t.Context()
	for _, b := range []string{"uma-private", "uma-inbox"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uma-private"), Key: aws.String("secret"), Body: strings.NewReader("payroll")}); err != nil {
		t.Fatal(err)
	}
	ps := s3.NewPresignClient(c)
	req, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uma-inbox"), Key: aws.String("upload.bin")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequestWithContext(ctx, "PUT", req.URL, bytes.NewReader(nil))
	r.Header.Set("X-Amz-Copy-Source", "/uma-private/secret")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := s3Code(t, resp); got != "AccessDenied" {
		t.Errorf("presigned PUT with an unsigned x-amz-copy-source: %q, want AccessDenied", got)
	}
	if o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uma-inbox"), Key: aws.String("upload.bin")}); err == nil {
		b, _ := io.ReadAll(o.Body)
		o.Body.Close()
		t.Fatalf("the presigned URL stored %q by copy", b)
	}
}

// Storage is billed for the time bytes were held, not for what a bucket
// holds at the moment billing runs: bytes stored and deleted between two
// runs, and a bucket emptied and deleted before the next, are charged.
// Otherwise an account keeps its data for free by deleting it before
// each run (and storing the same bytes again, which costs nothing: they
// are still placed).
func TestStorageBilledForBytesHeldBetweenRuns(t *testing.T) {
	n := ownNetwork(t, devnet.Config{
		S3StoragePrice: 1 << 50, S3StorageInterval: time.Hour, // about 0.4 bytes per byte-second; no run during the test
	})
	d := n.d
	c := client(n, n.account(t, "vic"))
	b := aws.String("vic-brief")
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: b, Key: aws.String("a"), Body: bytes.NewReader(random(1 << 20))}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // 1 MiB for half a second: about 200,000 bytes
	if _, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: b, Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(t.Context(), &s3.DeleteBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	var charged uint64
	testutil.Eventually(t, testutil.Scale(5*time.Second), "storage charged", func() bool {
		es, err := d.Coordinator().Ledger().Statement(t.Context(), "vic", ledger.StatementQuery{Type: ledger.EntryCharge})
		if err != nil {
			return false
		}
		charged = 0
		for _, e := range es {
			charged += e.Sites["s3:vic-brief"]
		}
		return charged >= 150_000
	})
}

// A streaming PUT that announces a chunk of the largest size and then
// sends nothing does not make the server hold that much memory: what it
// holds follows the bytes that arrived. Otherwise one client with a key
// pins 16 MiB per connection for a few bytes each.
func TestAnnouncedChunkDoesNotReserveMemory(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "walt")
	c := client(n, k)
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("walt-b")}); err != nil {
		t.Fatal(err)
	}
	const conns = 24
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	var pipes []*io.PipeWriter
	for i := range conns {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		req, _ := http.NewRequestWithContext(t.Context(), "PUT", fmt.Sprintf("%s/walt-b/big-%d", n.d.S3().URL(), i), pr)
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(16<<20))
		req.ContentLength = 16<<20 + 200
		if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(t.Context(),
			aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		go fmt.Fprintf(pw, "%x;chunk-signature=%s\r\nab", 16<<20, strings.Repeat("0", 64))
	}
	t.Cleanup(func() {
		for _, pw := range pipes {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		wg.Wait()
	})
	time.Sleep(testutil.Scale(time.Second))
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 128<<20 {
		t.Fatalf("the heap grew by %d MiB for %d connections that each sent a chunk header and 2 bytes", grew>>20, conns)
	}
}

// The parts of one upload may not stage more than a multipart object may
// hold: otherwise one upload keeps up to 10,000 parts of MaxObjectBytes
// each (50 TB at S3's 5 GiB) on the gateway's disk, unbilled, and is
// refused only at Complete.
func TestUploadPartsBoundedByObjectSize(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "xena")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(),
		DataDir: t.TempDir(), MaxMultipartBytes: 8 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})
	ctx := t.Context()
	b, key := aws.String("xena-b"), aws.String("big")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	part := random(6 << 20)
	for i := int32(1); i <= 3; i++ {
		_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(i), Body: bytes.NewReader(part)})
		switch {
		case i == 1 && err != nil:
			t.Fatal(err)
		case i > 1 && code(err) != "EntityTooLarge":
			t.Fatalf("part %d, %d MiB staged for an object of at most 8 MiB: %v", i, 6*i, err)
		}
	}
	// Replacing a part is not counted twice.
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)}); err != nil {
		t.Fatalf("part 1 again: %v", err)
	}
}

// An idle connection is closed after a while: without it anyone, with
// no key, holds a connection (a goroutine and a file descriptor) for as
// long as they like by sending one request and then nothing.
func TestIdleConnectionsClosed(t *testing.T) {
	n := startNetwork(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(),
		DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if d := s3api.IdleTimeout(srv); d <= 0 || d > 5*time.Minute {
		t.Errorf("idle connections are kept for %v", d)
	}
	s3api.SetIdleTimeout(srv, 200*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle connection was not closed: %v", err)
	}
}

// ListBuckets does not decode every bucket's index of every account to
// find the caller's: one account's bucket with a large index (as many
// long keys as its record holds) would otherwise make each ListBuckets
// of every other account, frozen ones included, decode tens of MB.
func TestListBucketsDoesNotDecodeOthersIndexes(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "yuri"))
	kv, err := n.d.Bus().KV(events.BucketS3Buckets)
	if err != nil {
		t.Fatal(err)
	}
	// Another account's bucket holding 40,000 keys of 1,000 bytes, as
	// the API records it (gzipped JSON below the record's bound).
	var js bytes.Buffer
	js.WriteString(`{"name":"zed-huge","account":"zed","created":"2026-01-01T00:00:00Z","root":"bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354","version":2,"objects":{`)
	for i := range 40000 {
		if i > 0 {
			js.WriteByte(',')
		}
		fmt.Fprintf(&js, `"%s%08d":{"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","size":0,"tsize":0,"etag":"d41d8cd98f00b204e9800998ecf8427e","modified":"2026-01-01T00:00:00Z"}`, strings.Repeat("k", 992), i)
	}
	js.WriteString(`},"billing":{"until":"0001-01-01T00:00:00Z"}}`)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(js.Bytes())
	zw.Close()
	if gz.Len() > 900<<10 {
		t.Fatalf("the record is %d KiB gzipped, more than the API writes", gz.Len()>>10)
	}
	if _, err := kv.Put(t.Context(), "zed-huge", gz.Bytes()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Delete(context.Background(), "zed-huge") })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Buckets {
		if aws.ToString(b.Name) == "zed-huge" {
			t.Fatal("another account's bucket listed")
		}
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("one ListBuckets allocated %d MiB (the JSON of another account's index is %d MiB)", alloc>>20, js.Len()>>20)
	}
}

// A body that stops arriving fails the request with RequestTimeout and
// leaves nothing staged, instead of holding the connection, a goroutine
// and a staged file for as long as the client likes.
func TestStalledBodyTimesOut(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "zoe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(),
		DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s3api.SetBodyIdleTimeout(srv, 300*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("zoe-b")}); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", srv.URL()+"/zoe-b/slow", pr)
	req.ContentLength = 1 << 20
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(t.Context(),
		aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	go pw.Write(make([]byte, 1000)) // then nothing
	got := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- s3Code(t, resp)
	}()
	select {
	case code := <-got:
		if code != "RequestTimeout" {
			t.Fatalf("a stalled body: %s", code)
		}
	case <-time.After(testutil.Scale(5 * time.Second)):
		t.Fatal("a stalled body held its request")
	}
	staged, _ := os.ReadDir(filepath.Join(dir, "s3-uploads"))
	if len(staged) != 0 {
		t.Fatalf("%d staged files left", len(staged))
	}
	// A body that arrived whole is not cut however long storing it takes
	// (longer than the timeout here).
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("zoe-b"), Key: aws.String("big"), Body: bytes.NewReader(random(32 << 20))}); err != nil {
		t.Fatalf("a PUT stored for longer than the body timeout: %v", err)
	}
}

// A presigned URL cannot sign the chunks of an aws-chunked body: their
// signatures chain from the request's and need the secret key, which the
// URL's holder does not have. A URL naming a signed streaming payload is
// refused, as S3 refuses it. Accepted, its chunk signatures went
// unchecked, and whoever held the URL could store any body in place of
// the one its signer meant to bind.
func TestPresignedStreamingPayloadRefused(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "psp")
	c := client(n, k)
	ctx := t.Context()
	bucket := fmt.Sprintf("psp-%x", random(4)) // another on each run of the shared network
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	zeros := strings.Repeat("0", 64)
	body := "7;chunk-signature=" + zeros + "\r\nforged!\r\n0;chunk-signature=" + zeros + "\r\n\r\n"
	for _, payload := range []string{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"} {
		// X-Amz-Content-Sha256 signed too, as a signer that streams would.
		resp := presignedPut(t, n, k, bucket, payload, body, "X-Amz-Content-Sha256", payload)
		if got := s3Code(t, resp); got != "AuthorizationQueryParametersError" {
			t.Errorf("presigned PUT with %s and forged chunk signatures: %q, want AuthorizationQueryParametersError", payload, got)
		}
	}
	if o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")}); err == nil {
		b, _ := io.ReadAll(o.Body)
		o.Body.Close()
		t.Fatalf("the presigned URL stored %q with chunk signatures nobody checked", b)
	}
}

// A presigned URL naming STREAMING-UNSIGNED-PAYLOAD-TRAILER takes an
// aws-chunked body (unsigned chunks) whose decoded length is its
// x-amz-decoded-content-length: the payload named in the URL's query
// decides how the body is read, as it does in a signed header.
func TestPresignedUnsignedStreamingPut(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "psu")
	c := client(n, k)
	ctx := t.Context()
	bucket := fmt.Sprintf("psu-%x", random(4)) // another on each run of the shared network
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	const payload = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	resp := presignedPut(t, n, k, bucket, payload, "7\r\nhello!!\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT with %s: %s", payload, s3Code(t, resp))
	}
	resp.Body.Close()
	o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(o.Body)
	o.Body.Close()
	if string(b) != "hello!!" {
		t.Fatalf("stored %q, want the decoded body", b)
	}
}

// presignedPut PUTs body, an aws-chunked encoding of 7 bytes, to
// bucket/obj through a URL k presigned for payload (X-Amz-Content-Sha256
// in its query), with the header name/value pairs in extra signed too.
func presignedPut(t *testing.T, n *network, k api.S3Key, bucket, payload, body string, extra ...string) *http.Response {
	t.Helper()
	ctx := t.Context()
	u := n.d.S3().URL() + "/" + bucket + "/obj?X-Amz-Content-Sha256=" + payload + "&X-Amz-Expires=60"
	req, err := http.NewRequestWithContext(ctx, "PUT", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	req.Header.Set("X-Amz-Decoded-Content-Length", "7")
	req.Header.Set("Content-Encoding", "aws-chunked")
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
		o.DisableHeaderHoisting = true
	})
	signed, hdr, err := signer.PresignHTTP(ctx, aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, payload, "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequestWithContext(ctx, "PUT", signed, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range hdr {
		if !strings.EqualFold(name, "Host") {
			r.Header[name] = v
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
