package s3api_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// lockedBuffer collects the network's logs, to check no secret is in them.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// network is a devnet (a gateway, its S3 API and two real nodes, R = 2)
// shared by the tests of this file.
type network struct {
	d     *devnet.Devnet
	admin string
	logs  *lockedBuffer
}

var (
	netOnce sync.Once
	shared  *network
	netErr  error
	stopNet func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopNet != nil {
		stopNet()
	}
	os.Exit(code)
}

// netUsers are the tests that used the shared network. Another test of the
// same name is a new round of the same tests (go test -count=N): their accounts
// and buckets exist already, so the round gets a network of its own. No
// test of the round before is running then: a round's parallel tests end
// before the next round starts.
var (
	netMu    sync.Mutex
	netUsers = map[string]testing.TB{}
)

func startNetwork(t testing.TB) *network {
	t.Helper()
	netMu.Lock()
	defer netMu.Unlock()
	if _, test := t.(*testing.T); test { // a benchmark runs again for each b.N
		if u, ok := netUsers[t.Name()]; ok && u != t {
			if stopNet != nil {
				stopNet()
			}
			netOnce, shared, netErr, stopNet = sync.Once{}, nil, nil, nil
			clear(netUsers)
		}
		netUsers[t.Name()] = t
	}
	netOnce.Do(func() {
		dir, err := os.MkdirTemp("", "verity-s3-test-*")
		if err != nil {
			netErr = err
			return
		}
		logs := &lockedBuffer{}
		d, err := devnet.New(context.Background(), devnet.Config{
			DataDir: dir, Listen: "127.0.0.1:0", S3Listen: "127.0.0.1:0", S3Domain: "s3.localhost",
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			netErr = err
			os.RemoveAll(dir)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		stopNet = func() {
			cancel()
			<-done
			d.Close()
			os.RemoveAll(dir)
		}
		wctx, wcancel := context.WithTimeout(ctx, testutil.Scale(30*time.Second))
		defer wcancel()
		if netErr = d.WaitReady(wctx); netErr != nil {
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "gateway", "admin-token"))
		if err != nil {
			netErr = err
			return
		}
		shared = &network{d: d, admin: strings.TrimSpace(string(b)), logs: logs}
	})
	if netErr != nil {
		t.Fatal(netErr)
	}
	return shared
}

// ownNetwork starts a devnet of the test's own, configured by cfg (its
// data directory, listen addresses and logger default to a temporary
// directory, loopback and a buffer), stopped when the test ends.
func ownNetwork(t *testing.T, cfg devnet.Config) *network {
	t.Helper()
	cfg.DataDir = cmp.Or(cfg.DataDir, t.TempDir())
	cfg.Listen = cmp.Or(cfg.Listen, "127.0.0.1:0")
	cfg.S3Listen = cmp.Or(cfg.S3Listen, "127.0.0.1:0")
	logs := &lockedBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := devnet.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, testutil.Scale(30*time.Second))
	defer wcancel()
	if err := d.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	admin, _ := os.ReadFile(filepath.Join(cfg.DataDir, "gateway", "admin-token"))
	return &network{d: d, admin: strings.TrimSpace(string(admin)), logs: logs}
}

// api calls the control plane's API with token.
func (n *network) api(t testing.TB, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, n.d.Gateway().URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// account creates account name (once) and an access key for it.
func (n *network) account(t testing.TB, name string) api.S3Key {
	t.Helper()
	_, _ = n.d.Coordinator().Ledger().CreateAccount(t.Context(), name, 0)
	if _, err := n.d.Coordinator().Ledger().TopUp(t.Context(), name, 1<<40); err != nil {
		t.Fatal(err)
	}
	var k api.S3Key
	if code := n.api(t, n.admin, "POST", "/v1/keys", api.CreateS3Key{Account: name}, &k); code != http.StatusCreated {
		t.Fatalf("create key: %d", code)
	}
	return k
}

func client(n *network, k api.S3Key) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(n.d.S3().URL()),
		UsePathStyle: true,
	})
}

// code is the S3 error code of err.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestKeys(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "keys-acct")
	if !strings.HasPrefix(k.ID, "VK") || len(k.ID) != 20 || len(k.Secret) < 40 {
		t.Fatalf("key %+v", k)
	}
	var list api.S3KeyList
	if code := n.api(t, n.admin, "GET", "/v1/keys?account=keys-acct", nil, &list); code != 200 || len(list.Keys) != 1 || list.Keys[0].ID != k.ID || list.Keys[0].Secret != "" {
		t.Fatalf("list: %d %+v", code, list)
	}
	// Neither the bus nor the logs hold the secret.
	kv, err := n.d.Bus().KV(events.BucketS3Keys)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte(k.Secret)) {
		t.Fatal("the s3_keys bucket holds the secret in the clear")
	}
	c := client(n, k)
	if _, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("list buckets with the new key: %v", err)
	}
	if strings.Contains(n.logs.String(), k.Secret) {
		t.Fatal("a log holds the secret")
	}
	// Nobody but the admin (or a deploy token of the account's site) may
	// make keys.
	if code := n.api(t, "", "POST", "/v1/keys", api.CreateS3Key{Account: "keys-acct"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := n.api(t, "vdt_wrong", "POST", "/v1/keys", api.CreateS3Key{Account: "keys-acct"}, nil); code != http.StatusForbidden {
		t.Fatalf("wrong token: %d", code)
	}
	// A site's deploy token manages the keys of its site's account, and
	// no other's.
	tok, err := n.d.Control().CreateSiteFor(t.Context(), "keys-site", "keys-acct")
	if err != nil {
		t.Fatal(err)
	}
	var own api.S3Key
	if code := n.api(t, tok, "POST", "/v1/keys", api.CreateS3Key{Account: "keys-acct", Site: "keys-site"}, &own); code != http.StatusCreated || own.Secret == "" {
		t.Fatalf("a deploy token of the account's site: %d", code)
	}
	n.account(t, "keys-other")
	if code := n.api(t, tok, "POST", "/v1/keys", api.CreateS3Key{Account: "keys-other", Site: "keys-site"}, nil); code != http.StatusForbidden {
		t.Fatalf("a deploy token for another account: %d", code)
	}
	if code := n.api(t, tok, "GET", "/v1/keys?account=keys-other&site=keys-site", nil, nil); code != http.StatusForbidden {
		t.Fatalf("listing another account's keys: %d", code)
	}
	if code := n.api(t, tok, "DELETE", "/v1/keys/"+own.ID+"?site=keys-site", nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoking with the deploy token: %d", code)
	}
	// Revoked: refused with InvalidAccessKeyId.
	if code := n.api(t, n.admin, "DELETE", "/v1/keys/"+k.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{}); code(err) != "InvalidAccessKeyId" {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestObjectsRoundTrip(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "alice"))
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); code(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")}); code(err) != "InvalidBucketName" {
		t.Fatalf("bad name: %v", err)
	}
	small, big := []byte("hello, verity\n"), random(600<<10) // one block; three blocks and a dag-pb root
	var roots []string
	for key, body := range map[string][]byte{"a/small.txt": small, "a/b/big.bin": big} {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err != nil {
			dumpFailures(t, n)
			t.Fatalf("put %s: %v", key, err)
		}
		_ = out
	}
	// Byte-equal, with the CIDs and the root in the headers, held by R nodes.
	for key, body := range map[string][]byte{"a/small.txt": small, "a/b/big.bin": big} {
		var cidHdr, rootHdr string
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String(key)}, s3.WithAPIOptions(headerCatcher(&cidHdr, &rootHdr)))
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(b, body) {
			t.Fatalf("get %s: %d bytes, %v; want %d equal bytes", key, len(b), err, len(body))
		}
		if cidHdr == "" || rootHdr == "" {
			t.Fatalf("get %s: x-verity-cid %q, x-verity-root %q", key, cidHdr, rootHdr)
		}
		held, want, err := n.d.Control().Holders(ctx, cidHdr)
		if err != nil || want != 2 || held < want {
			t.Fatalf("%s (%s) held by %d of %d nodes: %v", key, cidHdr, held, want, err)
		}
		roots = append(roots, rootHdr)
	}
	// Range.
	rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("a/b/big.bin"), Range: aws.String("bytes=262000-262999")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rg.Body)
	rg.Body.Close()
	if !bytes.Equal(b, big[262000:263000]) || aws.ToString(rg.ContentRange) != fmt.Sprintf("bytes 262000-262999/%d", len(big)) {
		t.Fatalf("range: %d bytes, %q", len(b), aws.ToString(rg.ContentRange))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("a/small.txt"), Range: aws.String("bytes=100-")}); code(err) != "InvalidRange" {
		t.Fatalf("range past the end: %v", err)
	}
	// HEAD, missing keys.
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("a/b/big.bin")})
	if err != nil || aws.ToInt64(h.ContentLength) != int64(len(big)) {
		t.Fatalf("head: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("nope")}); code(err) != "NoSuchKey" {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("x")}); code(err) != "NoSuchBucket" {
		t.Fatalf("missing bucket: %v", err)
	}
	// Copy: same bytes under another key.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy.txt"), CopySource: aws.String("photos/a/small.txt")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, small) {
		t.Fatalf("copy: %q", b)
	}
	// The bucket's root is the root `verity import` gives its tree.
	tree := t.TempDir()
	for key, body := range map[string][]byte{"a/small.txt": small, "a/b/big.bin": big, "copy.txt": small} {
		p := filepath.Join(tree, filepath.FromSlash(key))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := importRoot(t, tree)
	var rootNow, dummy string
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("photos")}, s3.WithAPIOptions(headerCatcher(&dummy, &rootNow))); err != nil {
		t.Fatal(err)
	}
	if rootNow != want {
		t.Fatalf("bucket root %s, the tree imports as %s", rootNow, want)
	}
	if roots[0] == rootNow && roots[1] == rootNow {
		t.Fatal("the root did not change with the copy")
	}
	// Not empty: not deleted. Emptied: deleted.
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("photos")}); code(err) != "BucketNotEmpty" {
		t.Fatalf("delete a full bucket: %v", err)
	}
	for _, key := range []string{"a/small.txt", "a/b/big.bin", "copy.txt"} {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatalf("delete the emptied bucket: %v", err)
	}
}
