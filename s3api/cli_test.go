package s3api_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/api"
)

// tool finds a client nobody here wrote: Debian's package first (what
// `make test-deps` installs), else one on PATH. CI has it; elsewhere a
// machine without it skips.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p := "/usr/bin/" + name; fileExists(p) {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (make test-deps installs it)", name)
		}
		t.Skipf("%s is not installed (make test-deps installs it)", name)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// awsCLI runs Debian's awscli against the network with key k.
type awsCLI struct {
	t    *testing.T
	bin  string
	url  string
	env  []string
	home string
}

func newAWSCLI(t *testing.T, n *network, k api.S3Key) *awsCLI {
	home := t.TempDir()
	return &awsCLI{t: t, bin: tool(t, "aws"), url: n.d.S3().URL(), home: home, env: []string{
		"HOME=" + home, "PATH=/usr/bin:/bin",
		"AWS_ACCESS_KEY_ID=" + k.ID, "AWS_SECRET_ACCESS_KEY=" + k.Secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1",
	}}
}

// run runs aws with args and returns stdout, stderr and whether it
// succeeded.
func (a *awsCLI) run(args ...string) (string, string, bool) {
	a.t.Helper()
	ctx, cancel := contextWithTimeout(a.t, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, append([]string{"--endpoint-url", a.url, "--no-cli-pager"}, args...)...)
	cmd.Env = a.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

func (a *awsCLI) must(args ...string) string {
	a.t.Helper()
	out, errs, ok := a.run(args...)
	if !ok {
		a.t.Fatalf("aws %s: %s%s", strings.Join(args, " "), out, errs)
	}
	return out
}

// Debian's awscli: aws s3 mb/cp (single and multipart, both ways)/ls/rm/rb
// and s3api calls, byte-equal, with S3's error codes for what is refused.
func TestAWSCLI(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "cli-user")
	a := newAWSCLI(t, n, k)
	dir := t.TempDir()
	body := random(1<<20 + 12345)
	src := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	a.must("s3", "mb", "s3://cli-bucket")
	a.must("s3", "cp", src, "s3://cli-bucket/dir/in.bin")
	// Over awscli's 8 MiB threshold: a multipart upload (8 MiB + 1 MiB),
	// and a download in ranged GETs.
	big := random(9 << 20)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	a.must("s3", "cp", filepath.Join(dir, "big.bin"), "s3://cli-bucket/big.bin")
	if out := a.must("s3", "ls", "s3://cli-bucket/dir/"); !strings.Contains(out, "in.bin") || !strings.Contains(out, "1060921") {
		t.Fatalf("ls: %q", out)
	}
	if out := a.must("s3", "ls", "s3://cli-bucket/"); !strings.Contains(out, "PRE dir/") || !strings.Contains(out, "big.bin") {
		t.Fatalf("ls of the top: %q", out)
	}
	part := filepath.Join(dir, "part.bin")
	if out := a.must("s3api", "get-object", "--bucket", "cli-bucket", "--key", "dir/in.bin", "--range", "bytes=1000-1999", part); !strings.Contains(out, "bytes 1000-1999/1060921") {
		t.Fatalf("get-object --range: %s", out)
	}
	if got, _ := os.ReadFile(part); !bytes.Equal(got, body[1000:2000]) {
		t.Fatal("the range's bytes differ")
	}
	if out := a.must("s3api", "head-object", "--bucket", "cli-bucket", "--key", "big.bin"); !strings.Contains(out, `-2\"`) || !strings.Contains(out, `"ContentLength": 9437184`) {
		t.Fatalf("head-object of the two-part upload: %s", out)
	}
	a.must("s3", "cp", "s3://cli-bucket/big.bin", filepath.Join(dir, "big.out"))
	if got, _ := os.ReadFile(filepath.Join(dir, "big.out")); !bytes.Equal(got, big) {
		t.Fatalf("multipart round trip: %d bytes, want %d", len(got), len(big))
	}
	if _, errs, ok := a.run("s3api", "get-object", "--bucket", "cli-bucket", "--key", "missing", filepath.Join(dir, "x")); ok || !strings.Contains(errs, "NoSuchKey") {
		t.Fatalf("missing key: %v %s", ok, errs)
	}
	wrong := newAWSCLI(t, n, api.S3Key{ID: k.ID, Secret: strings.Repeat("x", len(k.Secret))})
	if _, errs, ok := wrong.run("s3api", "list-objects-v2", "--bucket", "cli-bucket"); ok || !strings.Contains(errs, "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v %s", ok, errs)
	}
	other := newAWSCLI(t, n, n.account(t, "cli-other"))
	if _, errs, ok := other.run("s3", "cp", "s3://cli-bucket/dir/in.bin", filepath.Join(dir, "stolen")); ok || !strings.Contains(errs, "403") {
		t.Fatalf("another account's object: %v %s", ok, errs)
	}
	a.must("s3", "rm", "--recursive", "s3://cli-bucket/")
	a.must("s3", "rb", "s3://cli-bucket")
}

// runTool runs a client with env and returns its output and whether it
// succeeded.
func runTool(t *testing.T, env []string, bin string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// Debian's rclone: mkdir, copy up and down byte-equal, ls, delete, rmdir.
func TestRclone(t *testing.T) {
	n := startNetwork(t)
	bin := tool(t, "rclone")
	k := n.account(t, "rclone-user")
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "RCLONE_CONFIG=" + filepath.Join(home, "rclone.conf"),
		"RCLONE_CONFIG_V_TYPE=s3", "RCLONE_CONFIG_V_PROVIDER=Other", "RCLONE_CONFIG_V_ENV_AUTH=false",
		"RCLONE_CONFIG_V_ACCESS_KEY_ID=" + k.ID, "RCLONE_CONFIG_V_SECRET_ACCESS_KEY=" + k.Secret,
		"RCLONE_CONFIG_V_ENDPOINT=" + n.d.S3().URL(), "RCLONE_CONFIG_V_REGION=us-east-1", "RCLONE_CONFIG_V_FORCE_PATH_STYLE=true"}
	must := func(args ...string) string {
		t.Helper()
		out, ok := runTool(t, env, bin, append(args, "--retries", "1", "--low-level-retries", "1")...)
		if !ok {
			t.Fatalf("rclone %s: %s", strings.Join(args, " "), out)
		}
		return out
	}
	src, dst := t.TempDir(), t.TempDir()
	files := map[string][]byte{"a.bin": random(300 << 10), "sub/b.txt": []byte("rclone\n")}
	for name, b := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("mkdir", "v:rc-bucket")
	must("copy", src, "v:rc-bucket/up")
	if out := must("ls", "v:rc-bucket"); !strings.Contains(out, "up/a.bin") || !strings.Contains(out, "up/sub/b.txt") {
		t.Fatalf("ls: %q", out)
	}
	must("copy", "v:rc-bucket/up", dst)
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %d bytes back (%v), want %d", name, len(got), err, len(b))
		}
	}
	must("delete", "v:rc-bucket")
	must("rmdir", "v:rc-bucket")
}

// Debian's s3cmd: mb, put, ls, get byte-equal, del, rb.
func TestS3cmd(t *testing.T) {
	n := startNetwork(t)
	bin := tool(t, "s3cmd")
	k := n.account(t, "s3cmd-user")
	home := t.TempDir()
	host := strings.TrimPrefix(n.d.S3().URL(), "http://")
	cfg := filepath.Join(home, "s3cfg")
	conf := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n", k.ID, k.Secret, host, host)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	must := func(args ...string) string {
		t.Helper()
		out, ok := runTool(t, env, bin, append([]string{"-c", cfg}, args...)...)
		if !ok {
			t.Fatalf("s3cmd %s: %s", strings.Join(args, " "), out)
		}
		return out
	}
	body := random(200 << 10)
	src := filepath.Join(home, "in.bin")
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	must("mb", "s3://sc-bucket")
	must("put", src, "s3://sc-bucket/dir/in.bin")
	if out := must("ls", "s3://sc-bucket/dir/"); !strings.Contains(out, "s3://sc-bucket/dir/in.bin") {
		t.Fatalf("ls: %q", out)
	}
	if out := must("ls", "s3://sc-bucket"); !strings.Contains(out, "DIR") || !strings.Contains(out, "s3://sc-bucket/dir/") {
		t.Fatalf("ls of the top: %q", out)
	}
	dst := filepath.Join(home, "out.bin")
	must("get", "s3://sc-bucket/dir/in.bin", dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes (%v), want %d", len(got), err, len(body))
	}
	if out, ok := runTool(t, env, bin, "-c", cfg, "rb", "s3://sc-bucket"); ok || !strings.Contains(out, "BucketNotEmpty") {
		t.Fatalf("rb of a full bucket: %v %s", ok, out)
	}
	must("del", "s3://sc-bucket/dir/in.bin")
	must("rb", "s3://sc-bucket")
}
