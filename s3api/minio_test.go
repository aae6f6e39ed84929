package s3api_test

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/verity-cdn/verity/internal/api"
)

// minioClient is a MinIO SDK client of the server at rawURL with key k,
// through hc's transport when given; trailing asks it to send checksums
// in trailers (signed ones over HTTP, unsigned over HTTPS).
func minioClient(t *testing.T, rawURL string, hc *http.Client, k api.S3Key, trailing bool) *minio.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	var tr http.RoundTripper = &http.Transport{}
	if hc != nil {
		tr = hc.Transport
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(k.ID, k.Secret, ""), Secure: u.Scheme == "https", Transport: tr,
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath, TrailingHeaders: trailing,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The MinIO SDK for Go, as its users run it: over HTTP (signed chunks,
// with a signed trailer when it sends checksums in trailers) and over
// HTTPS (unsigned payloads, trailers of its own form), single and
// multipart PUTs, ranged GETs, listings, copies, deletes, presigned URLs,
// and the refusals it must report.
func TestMinioClient(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "minio-user")
	other := n.account(t, "minio-other")
	httpsURL, tlsClient := tlsAPI(t, n)
	cases := []struct {
		name     string
		url      string
		hc       *http.Client // trusting the HTTPS API's certificate
		trailing bool
	}{
		{"http", n.d.S3().URL(), nil, false},
		{"http-trailer", n.d.S3().URL(), nil, true},
		{"https", httpsURL, tlsClient, false},
		{"https-trailer", httpsURL, tlsClient, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c := minioClient(t, tc.url, tc.hc, k, tc.trailing)
			bucket := "minio-" + tc.name
			if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
				t.Fatal(err)
			}
			small := random(100 << 10)
			if _, err := c.PutObject(ctx, bucket, "dir/small.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
				t.Fatalf("PUT small: %v", err)
			}
			if _, err := c.PutObject(ctx, bucket, "dir/crc.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}); err != nil && tc.trailing {
				t.Fatalf("PUT with a CRC32C: %v", err)
			}
			// Multipart: 12 MiB in 5 MiB parts.
			big := random(12 << 20)
			if _, err := c.PutObject(ctx, bucket, "big.bin", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
				t.Fatalf("PUT multipart: %v", err)
			}
			get := func(key string, opts minio.GetObjectOptions) []byte {
				t.Helper()
				o, err := c.GetObject(ctx, bucket, key, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				b, err := io.ReadAll(o)
				if err != nil {
					t.Fatalf("GET %s: %v", key, err)
				}
				return b
			}
			if !bytes.Equal(get("dir/small.bin", minio.GetObjectOptions{}), small) {
				t.Fatal("small object differs")
			}
			if !bytes.Equal(get("big.bin", minio.GetObjectOptions{}), big) {
				t.Fatal("multipart object differs")
			}
			var rng minio.GetObjectOptions
			_ = rng.SetRange(5<<20-10, 5<<20+9)
			if got := get("big.bin", rng); !bytes.Equal(got, big[5<<20-10:5<<20+10]) {
				t.Fatalf("range across parts: %d bytes", len(got))
			}
			st, err := c.StatObject(ctx, bucket, "big.bin", minio.StatObjectOptions{})
			if err != nil || st.Size != int64(len(big)) || !strings.HasSuffix(st.ETag, "-3") {
				t.Fatalf("stat: size %d etag %q: %v", st.Size, st.ETag, err)
			}
			if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: "dir/copy.bin"}, minio.CopySrcOptions{Bucket: bucket, Object: "dir/small.bin"}); err != nil {
				t.Fatalf("copy: %v", err)
			}
			var keys []string
			for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "dir/", Recursive: true}) {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				keys = append(keys, o.Key)
			}
			want := []string{"dir/copy.bin", "dir/small.bin"}
			if tc.trailing {
				want = []string{"dir/copy.bin", "dir/crc.bin", "dir/small.bin"}
			}
			if !slices.Equal(keys, want) {
				t.Fatalf("list: %v, want %v", keys, want)
			}

			// Presigned GET and PUT, with no client of S3's.
			pu, err := c.PresignedPutObject(ctx, bucket, "presigned.txt", 600e9)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, pu.String(), strings.NewReader("through a presigned URL"))
			hc := cmp.Or(tc.hc, http.DefaultClient)
			if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("presigned PUT: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			gu, err := c.PresignedGetObject(ctx, bucket, "presigned.txt", 600e9, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Get(gu.String())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "through a presigned URL" {
				t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
			}

			// Refusals, with S3's codes as the SDK reports them.
			bad := minioClient(t, tc.url, tc.hc, api.S3Key{ID: k.ID, Secret: k.Secret + "x"}, tc.trailing)
			read := func(c *minio.Client, key string) error {
				o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
				if err != nil {
					return err
				}
				defer o.Close()
				_, err = io.ReadAll(o)
				return err
			}
			if err := read(bad, "big.bin"); minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
				t.Errorf("a wrong secret: %v", err)
			}
			if _, err := bad.PutObject(ctx, bucket, "forged.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
				t.Errorf("a PUT with a wrong secret: %v", err)
			}
			oc := minioClient(t, tc.url, tc.hc, other, tc.trailing)
			if err := read(oc, "big.bin"); minio.ToErrorResponse(err).Code != "AccessDenied" {
				t.Errorf("another account's read: %v", err)
			}
			if _, err := oc.PutObject(ctx, bucket, "intruder.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
				t.Errorf("another account's PUT: %v", err)
			}
			if err := read(c, "forged.bin"); minio.ToErrorResponse(err).Code != "NoSuchKey" {
				t.Errorf("the forged PUT left %v", err)
			}

			// Deletes, one and many.
			if err := c.RemoveObject(ctx, bucket, "dir/copy.bin", minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			objs := make(chan minio.ObjectInfo, 8)
			for _, key := range []string{"dir/small.bin", "dir/crc.bin", "big.bin", "presigned.txt"} {
				objs <- minio.ObjectInfo{Key: key}
			}
			close(objs)
			for e := range c.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
				t.Errorf("remove %s: %v", e.ObjectName, e.Err)
			}
			if err := c.RemoveBucket(ctx, bucket); err != nil {
				t.Fatalf("remove the emptied bucket: %v", err)
			}
		})
	}
}

// sha256Hasher is the hasher the MinIO signer takes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// A signed trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, as the
// MinIO SDK's own signer writes it) is checked: a trailer changed after
// signing, or its signature left out, fails the PUT and stores nothing.
func TestSignedTrailerChecked(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "trailer-signed")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("trailer-b")}); err != nil {
		t.Fatal(err)
	}
	body := random(150 << 10)
	sum := crc32.ChecksumIEEE(body)
	good := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
	other := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum+1))
	put := func(key string, tamper func([]byte) []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, n.d.S3().URL()+"/trailer-b/"+key, bytes.NewReader(body))
		req.Trailer = http.Header{"X-Amz-Checksum-Crc32": []string{good}}
		req = signer.StreamingSignV4(req, k.ID, k.Secret, "", "us-east-1", int64(len(body)), time.Now().UTC(), sha256Hasher{sha256.New()})
		enc, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			enc = tamper(enc)
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(enc)), int64(len(enc))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := put("ok.bin", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a signed trailer: %s %s", resp.Status, s3Code(t, resp))
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("trailer-b"), Key: aws.String("ok.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatal("the decoded object differs")
	}
	// The checksum in the trailer replaced after signing (and matching
	// other bytes): the trailer's signature no longer holds.
	if code := s3Code(t, put("changed.bin", func(b []byte) []byte {
		return bytes.Replace(b, []byte(good), []byte(other), 1)
	})); code != "SignatureDoesNotMatch" {
		t.Fatalf("a changed trailer: %s", code)
	}
	// The signature line left out.
	if code := s3Code(t, put("unsigned.bin", func(b []byte) []byte {
		i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
		return append(b[:i:i], "\r\n"...)
	})); code == "" {
		t.Fatal("a trailer without its signature was accepted")
	}
	for _, key := range []string{"changed.bin", "unsigned.bin"} {
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("trailer-b"), Key: aws.String(key)}); code(err) != "NotFound" {
			t.Fatalf("%s was stored: %v", key, err)
		}
	}
}
