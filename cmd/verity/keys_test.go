package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/testutil"
)

// `verity gateway --s3-listen` serves the S3 API; `verity keys` makes,
// lists and revokes an account's access keys, whose secret is printed
// once.
func TestKeysCommandsAndGatewayS3(t *testing.T) {
	const admin = "vat_cli-keys"
	s3Addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1))
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", admin,
		"--replicas", "1", "--allow-private-addrs", "--faucet", "--s3-listen", s3Addr}, "gateway: ")
	startCommand(t, runNode, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0",
		"--log-level", "warn", "--coordinator", gw, "--operator-token", createOperator(t, gw, admin)}, "id: ")
	if _, err := runCmd(t, runAccounts, "create", "media", "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, runAccounts, "topup", "media", "1GiB", "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err) // an account without funds is frozen: it may not store
	}
	out, err := runCmd(t, runKeys, "create", "--account", "media", "--gateway", gw, "--admin-token", admin)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	id, secret := env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
	if id == "" || secret == "" {
		t.Fatalf("keys create printed %q", out)
	}
	list, err := runCmd(t, runKeys, "list", "--account", "media", "--gateway", gw, "--admin-token", admin)
	if err != nil || !strings.Contains(list, id) || strings.Contains(list, secret) {
		t.Fatalf("keys list: %q, %v", list, err)
	}
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint: aws.String("http://" + s3Addr), UsePathStyle: true})
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a.txt"), Body: strings.NewReader("stored")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("a.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, []byte("stored")) {
		t.Fatalf("got %q", b)
	}
	// A site of the account follows the bucket (`verity gateway` hands
	// its S3 API to its control plane): published at the bucket's root.
	if _, err := runCmd(t, runSites, "create", "mediasite", "--account", "media", "--from-bucket", "media", "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 30*time.Second, "mediasite published", func() error {
		out, err := runCmd(t, runSites, "history", "mediasite", "--gateway", gw, "--admin-token", admin)
		if err != nil || !strings.Contains(out, "(current)") {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	// Another account's site may not follow it.
	if _, err := runCmd(t, runAccounts, "create", "other", "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, runSites, "create", "othersite", "--account", "other", "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, runSites, "follow", "othersite", "media", "--gateway", gw, "--admin-token", admin); err == nil {
		t.Fatal("another account's site follows the bucket")
	}
	if _, err := runCmd(t, runKeys, "revoke", id, "--gateway", gw, "--admin-token", admin); err != nil {
		t.Fatal(err)
	}
	if list, _ := runCmd(t, runKeys, "list", "--account", "media", "--gateway", gw, "--admin-token", admin); strings.Contains(list, id) {
		t.Fatalf("revoked key still listed: %q", list)
	}
	if _, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Fatalf("revoked key: %v", err)
	}
}
