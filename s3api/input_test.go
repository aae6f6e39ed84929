package s3api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/importer"
)

// placementOf reports whether root has a placement.
func placementOf(n *network, root string) (string, bool) {
	for _, p := range n.d.Coordinator().Placements() {
		if p.Root == root {
			return p.Root, true
		}
	}
	return "", false
}

// Bad input gets S3's error and leaves nothing behind.
func TestBadInputRefused(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "carol")
	c := client(n, k)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("carol-b")}); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("carol-b"), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	if err := put("dir/file", "x"); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		strings.Repeat("k", 1025): "KeyTooLongError",
		"a//b":                    "InvalidArgument",
		"../up":                   "InvalidArgument",
		"dir":                     "InvalidArgument", // a file where dir/ is a directory
		"dir/file/under":          "InvalidArgument", // a directory where dir/file is a file
		"folder/":                 "InvalidArgument", // a folder marker with bytes
	} {
		body := "refused " + key
		if err := put(key, body); code(err) != want {
			t.Errorf("put %.20q: %v, want %s", key, err, want)
		}
		// Its bytes were neither kept nor placed.
		p := filepath.Join(t.TempDir(), "f")
		_ = os.WriteFile(p, []byte(body), 0o644)
		root, err := importer.WriteCAR(ctx, p, io.Discard, importer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(n.d.DataDir(), "gateway", "content", root.String()+".car")); err == nil {
			t.Errorf("put %.20q: its CAR was kept", key)
		}
		if _, ok := placementOf(n, root.String()); ok {
			t.Errorf("put %.20q: its bytes were placed", key)
		}
	}
	if err := put("folder/", ""); err != nil {
		t.Fatalf("an empty folder marker: %v", err)
	}
	// Bad XML.
	for _, body := range []string{"<Delete><Object><Key>dir/file", "not xml", "<Delete></Delete>"} {
		resp := signed(t, k, "POST", n.d.S3().URL()+"/carol-b?delete=", []byte(body), sha([]byte(body)), time.Now())
		if c := s3Code(t, resp); c != "MalformedXML" {
			t.Errorf("DeleteObjects %q: %s", body, c)
		}
	}
	resp := signed(t, k, "PUT", n.d.S3().URL()+"/carol-new", []byte("<CreateBucketConfiguration>"), sha([]byte("<CreateBucketConfiguration>")), time.Now())
	if c := s3Code(t, resp); c != "MalformedXML" {
		t.Errorf("CreateBucket with bad XML: %s", c)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("carol-new")}); code(err) != "NotFound" {
		t.Errorf("the refused bucket exists: %v", err)
	}
	// What is not implemented says so.
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("carol-b"), Key: aws.String("big"), UploadId: aws.String("0123456789abcdef0123456789abcdef"),
		PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); code(err) != "NoSuchUpload" {
		t.Errorf("a part of no upload: %v", err)
	}
	if _, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("carol-b")}); code(err) != "NotImplemented" {
		t.Errorf("acl: %v", err)
	}
	// Nothing refused was kept: the bucket holds what was accepted.
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("carol-b")})
	if err != nil || len(l.Contents) != 2 {
		t.Fatalf("%v keys after the refusals, %v", len(l.Contents), err)
	}
	staged, _ := os.ReadDir(filepath.Join(n.d.DataDir(), "gateway", "s3-uploads"))
	if len(staged) != 0 {
		t.Fatalf("%d staged files left", len(staged))
	}
}

// A presigned PUT stores an object; its URL cannot store another key.
func TestPresignedPut(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "dave"))
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("dave-b")}); err != nil {
		t.Fatal(err)
	}
	ps := s3.NewPresignClient(c)
	req, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("dave-b"), Key: aws.String("up.bin")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	body := random(70 << 10)
	do := func(url string) *http.Response {
		r, _ := http.NewRequestWithContext(ctx, "PUT", url, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if c := s3Code(t, do(strings.Replace(req.URL, "up.bin", "other.bin", 1))); c != "SignatureDoesNotMatch" {
		t.Fatalf("another key with the URL: %s", c)
	}
	resp := do(req.URL)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Verity-Cid") == "" {
		t.Fatalf("presigned PUT: %s", resp.Status)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dave-b"), Key: aws.String("up.bin")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatal(fmt.Sprintf("got %d bytes, want %d", len(b), len(body)))
	}
}
