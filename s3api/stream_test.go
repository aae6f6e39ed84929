package s3api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/s3api"
)

// tlsAPI serves another S3 API of the network over TLS (as a gateway
// behind HTTPS would be reached) and returns its URL and a client that
// trusts it.
func tlsAPI(t *testing.T, n *network) (string, *http.Client) {
	t.Helper()
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	certs, hc := ts.TLS.Certificates, ts.Client()
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{Listener: tls.NewListener(ln, &tls.Config{Certificates: certs}),
		Keys: n.d.Control(), Store: n.d.Control(), Bus: n.d.Bus(), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String(), hc
}

// Over HTTPS the AWS SDK for Go sends its PUTs as streaming payloads
// (aws-chunked, with a trailing checksum): they are decoded, checked and
// stored byte-equal.
func TestStreamingPayloadFromTheSDK(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "leo")
	url, hc := tlsAPI(t, n)
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(url), UsePathStyle: true, HTTPClient: hc})
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("leo-b")}); err != nil {
		t.Fatal(err)
	}
	body := random(300 << 10)
	// A body that cannot seek: the SDK streams it (aws-chunked, with a
	// trailing CRC32) rather than reading it twice.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("leo-b"), Key: aws.String("s.bin"),
		Body: struct{ io.Reader }{bytes.NewReader(body)}, ContentLength: aws.Int64(int64(len(body))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("leo-b"), Key: aws.String("s.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatalf("got %d bytes, want %d", len(b), len(body))
	}
}

// chunkedPut sends body as a signed streaming payload
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) in chunks of size, signed with the
// SDK's signers; tamper, when set, changes the encoded body after signing.
func chunkedPut(t *testing.T, k api.S3Key, url string, body []byte, size int, tamper func([]byte) []byte, declared int) *http.Response {
	t.Helper()
	now := time.Now().UTC()
	creds := aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", url, nil)
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	req.Header.Set("Content-Encoding", "aws-chunked")
	if declared < 0 {
		declared = len(body)
	}
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(declared))
	var enc bytes.Buffer
	// The encoded length is signed: compute it first (signatures are 64 hex).
	var chunks [][]byte
	for off := 0; off < len(body); off += size {
		chunks = append(chunks, body[off:min(off+size, len(body))])
	}
	chunks = append(chunks, nil) // the last, empty chunk
	encLen := 0
	for _, ch := range chunks {
		encLen += len(strconv.FormatInt(int64(len(ch)), 16)) + len(";chunk-signature=") + 64 + 2 + len(ch) + 2
	}
	req.ContentLength = int64(encLen)
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(t.Context(), creds, req,
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "s3", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	seed, _ := hex.DecodeString(auth[strings.LastIndex(auth, "=")+1:])
	ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
	for _, chunk := range chunks {
		sig, err := ss.GetSignature(t.Context(), nil, chunk, now)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&enc, "%x;chunk-signature=%x\r\n", len(chunk), sig)
		enc.Write(chunk)
		enc.WriteString("\r\n")
	}
	b := enc.Bytes()
	if tamper != nil {
		b = tamper(b)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Signed chunks: each chunk's signature is checked; a changed byte fails
// its chunk and nothing is stored.
func TestSignedChunksChecked(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "mia")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mia-b")}); err != nil {
		t.Fatal(err)
	}
	base := n.d.S3().URL() + "/mia-b/"
	body := random(200 << 10)
	resp := chunkedPut(t, k, base+"ok.bin", body, 64<<10, nil, -1)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed chunks: %s", resp.Status)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mia-b"), Key: aws.String("ok.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatal("the decoded object differs")
	}
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 1 // a byte of the second chunk's data
		return b
	}
	if c := s3Code(t, chunkedPut(t, k, base+"bad.bin", body, 64<<10, flip, -1)); c != "SignatureDoesNotMatch" {
		t.Fatalf("a changed chunk: %s", c)
	}
	if c := s3Code(t, chunkedPut(t, k, base+"cut.bin", body, 64<<10, nil, len(body)+1)); c != "IncompleteBody" {
		t.Fatalf("fewer bytes than declared: %s", c)
	}
	for _, key := range []string{"bad.bin", "cut.bin"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mia-b"), Key: aws.String(key)}); code(err) != "NotFound" {
			t.Fatalf("%s was stored: %v", key, err)
		}
	}
}

// An unsigned streaming payload's trailing checksum is checked.
func TestStreamingTrailerChecked(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "noah")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("noah-b")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("trailing checksums")
	put := func(key, crc string) *http.Response {
		enc := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(body), body, crc)
		req, _ := http.NewRequestWithContext(ctx, "PUT", n.d.S3().URL()+"/noah-b/"+key, strings.NewReader(enc))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(body)))
		if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(ctx,
			aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sum := crc32.ChecksumIEEE(body)
	good := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	if resp := put("good", good); resp.StatusCode != 200 {
		t.Fatalf("the right checksum: %s %s", resp.Status, s3Code(t, resp))
	}
	if c := s3Code(t, put("bad", "AAAAAA==")); c != "BadDigest" {
		t.Fatalf("a wrong checksum: %s", c)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("noah-b"), Key: aws.String("bad")}); code(err) != "NotFound" {
		t.Fatalf("stored despite its checksum: %v", err)
	}
}
