package s3api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/importer"
)

// headerCatcher records the response's x-verity-cid and x-verity-root.
func headerCatcher(cidHdr, rootHdr *string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("verity-headers",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
					*cidHdr, *rootHdr = resp.Header.Get("X-Verity-Cid"), resp.Header.Get("X-Verity-Root")
				}
				return out, md, err
			}), middleware.After)
	}
}

func importRoot(t *testing.T, dir string) string {
	t.Helper()
	root, err := importer.WriteCAR(t.Context(), dir, io.Discard, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return root.String()
}

// s3Code is the Code of an S3 XML error body.
func s3Code(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var doc struct {
		Code string `xml:"Code"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &doc); err != nil {
		return fmt.Sprintf("status %d, not an S3 error: %q", resp.StatusCode, b)
	}
	return doc.Code
}

// signed sends a request signed with the SDK's signer.
func signed(t *testing.T, k api.S3Key, method, url string, body []byte, payloadHash string, at time.Time) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(t.Context(),
		aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, payloadHash, "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// Each attack is refused with S3's code and leaves nothing behind.
func TestAttacksRefused(t *testing.T) {
	n := startNetwork(t)
	ctx := t.Context()
	bob := n.account(t, "bob")
	mallory := n.account(t, "mallory")
	cb := client(n, bob)
	if _, err := cb.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bob-files")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("secret.txt"), Body: strings.NewReader("bob's")}); err != nil {
		t.Fatal(err)
	}
	base := n.d.S3().URL() + "/bob-files/"

	t.Run("wrong signature", func(t *testing.T) {
		bad := bob
		bad.Secret = mallory.Secret
		resp := signed(t, bad, "GET", base+"secret.txt", nil, sha(nil), time.Now())
		if c := s3Code(t, resp); c != "SignatureDoesNotMatch" || resp.StatusCode != 403 {
			t.Fatalf("%d %s", resp.StatusCode, c)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		bad := bob
		bad.ID = "VKAAAAAAAAAAAAAAAAAA"
		if c := s3Code(t, signed(t, bad, "GET", base+"secret.txt", nil, sha(nil), time.Now())); c != "InvalidAccessKeyId" {
			t.Fatal(c)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		resp, err := http.Get(base + "secret.txt")
		if err != nil {
			t.Fatal(err)
		}
		if c := s3Code(t, resp); c != "AccessDenied" {
			t.Fatal(c)
		}
	})
	t.Run("old request", func(t *testing.T) {
		if c := s3Code(t, signed(t, bob, "GET", base+"secret.txt", nil, sha(nil), time.Now().Add(-time.Hour))); c != "RequestTimeTooSkewed" {
			t.Fatal(c)
		}
	})
	t.Run("body not the signed hash", func(t *testing.T) {
		resp := signed(t, bob, "PUT", base+"tampered.txt", []byte("evil bytes"), sha([]byte("good bytes")), time.Now())
		if c := s3Code(t, resp); c != "XAmzContentSHA256Mismatch" {
			t.Fatal(c)
		}
		if _, err := cb.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("tampered.txt")}); code(err) != "NotFound" {
			t.Fatalf("the refused object exists: %v", err)
		}
	})
	t.Run("wrong Content-MD5", func(t *testing.T) {
		_, err := cb.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("md5.txt"), Body: strings.NewReader("abc"), ContentMD5: aws.String("AAAAAAAAAAAAAAAAAAAAAA==")})
		if code(err) != "BadDigest" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("another account's bucket", func(t *testing.T) {
		cm := client(n, mallory)
		if _, err := cm.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("secret.txt")}); code(err) != "AccessDenied" {
			t.Fatalf("get: %v", err)
		}
		if _, err := cm.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("x"), Body: strings.NewReader("x")}); code(err) != "AccessDenied" {
			t.Fatalf("put: %v", err)
		}
		if _, err := cm.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("secret.txt")}); code(err) != "AccessDenied" {
			t.Fatalf("delete: %v", err)
		}
		if _, err := cm.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bob-files")}); code(err) != "AccessDenied" {
			t.Fatalf("list: %v", err)
		}
		if _, err := cm.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("y"), CopySource: aws.String("bob-files/secret.txt")}); code(err) != "AccessDenied" {
			t.Fatalf("copy: %v", err)
		}
		if _, err := cm.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bob-files")}); code(err) != "BucketAlreadyExists" {
			t.Fatalf("create: %v", err)
		}
		lb, err := cm.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(lb.Buckets) != 0 {
			t.Fatalf("mallory lists %v, %v", lb, err)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		ps := s3.NewPresignClient(cb)
		req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bob-files"), Key: aws.String("secret.txt")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(req.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "bob's" {
			t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
		}
		// Changing what it names breaks the signature.
		resp, err = http.Get(strings.Replace(req.URL, "secret.txt", "secret.txx", 1))
		if err != nil {
			t.Fatal(err)
		}
		if c := s3Code(t, resp); c != "SignatureDoesNotMatch" {
			t.Fatal(c)
		}
		// Expired: signed a minute ago for one second.
		expired := func(at time.Time) string {
			req, _ := http.NewRequest("GET", base+"secret.txt?X-Amz-Expires=1", nil)
			uri, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(ctx,
				aws.Credentials{AccessKeyID: bob.ID, SecretAccessKey: bob.Secret}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
			if err != nil {
				t.Fatal(err)
			}
			return uri
		}
		if resp, err = http.Get(expired(time.Now())); err != nil || resp.StatusCode != 200 {
			t.Fatalf("the same URL signed now: %v %v", resp.Status, err)
		}
		resp.Body.Close()
		resp, err = http.Get(expired(time.Now().Add(-time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 403 || s3Code(t, resp) != "AccessDenied" {
			t.Fatalf("expired presigned URL: %d", resp.StatusCode)
		}
	})
}
