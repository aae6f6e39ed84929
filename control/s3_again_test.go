package control

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
	"github.com/verity-cdn/verity/s3api"
)

// s3Stack is a gateway stack with two nodes and the S3 API on it.
type s3Stack struct {
	tg    *testStack
	nodes []*node.Node
	c     *s3.Client
}

func startS3Stack(t *testing.T, name string, ctl Config, mod func(*coordinator.Config), s3mod func(*s3api.Config)) *s3Stack {
	t.Helper()
	bus := openBus(t, name)
	dir := t.TempDir()
	ctl.DataDir, ctl.AdminToken = dir, testAdmin
	tg, _ := startStackWith(t, bus, ctl, gateway.Config{}, mod)
	nodes := startNodes(t, tg, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s3api.Config{Listener: ln, Keys: tg.ctl, Store: tg.ctl, Bus: bus, DataDir: dir, Logger: discard()}
	if s3mod != nil {
		s3mod(&cfg)
	}
	srv, err := s3api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s3api.NewReferences(bus)
	if err != nil {
		t.Fatal(err)
	}
	tg.coord.AddReferenceSource(refs)
	tg.ctl.SetBuckets(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	if _, err := tg.coord.Ledger().CreateAccount(t.Context(), "media", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.coord.Ledger().TopUp(t.Context(), "media", 1<<40); err != nil {
		t.Fatal(err)
	}
	k, err := tg.ctl.CreateS3Key(t.Context(), "media")
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})
	return &s3Stack{tg: tg, nodes: nodes, c: c}
}

// objectRoots lists the roots placed for bucket's objects.
func (s *s3Stack) objectRoots(bucket string) []string {
	var out []string
	for _, p := range s.tg.Coordinator().Placements() {
		if !p.Partial && slices.Contains(p.Sites, s3api.PlacementLabel(bucket)) {
			out = append(out, p.Root)
		}
	}
	return out
}

// A CopyObject of an object whose every holder failed its audit (both
// nodes lost its root block): the copy places the content again from its
// CAR, as a PUT of the same bytes does, and is acknowledged once the
// nodes hold it again. Before, it only waited for holders nothing
// ordered, and every copy (and retry) failed with 503 after StoreTimeout.
func TestCopyAfterEveryHolderFailedItsAudit(t *testing.T) {
	s := startS3Stack(t, "gw-copy-again", Config{}, func(c *coordinator.Config) { c.AuditInterval = 100 * time.Millisecond },
		func(c *s3api.Config) { c.StoreTimeout = 8 * time.Second })
	ctx := t.Context()
	if _, err := s.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	body := []byte("the bytes of one object, copied later")
	if _, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("a.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	roots := s.objectRoots("photos")
	if len(roots) != 1 {
		t.Fatalf("object placements %v", roots)
	}
	root := roots[0]
	rc := gocid.MustParse(root)
	for _, n := range s.nodes {
		if err := n.Blockstore().DeleteBlock(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both holders failed their audit", func() bool {
		p, _ := s.tg.Coordinator().Placement(root)
		return len(p.Holders(coordinator.HolderFailed)) == 2
	})
	start := time.Now()
	if _, err := s.c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("b.txt"), CopySource: aws.String("photos/a.txt")},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err != nil {
		p, _ := s.tg.Coordinator().Placement(root)
		t.Fatalf("copy failed after %s: %v\nplacement %+v", time.Since(start).Round(time.Second), err, p.Nodes)
	}
	got, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, body) {
		t.Fatalf("GET the copy: %q", b)
	}
}

// gatedHolders is the control plane as an S3 API's store, running gate
// once, the first time root is found held (a PUT of root's bytes is then
// between its store and its record).
type gatedHolders struct {
	*Control
	root string
	once sync.Once
	gate func()
}

func (g *gatedHolders) Holders(ctx context.Context, root string) (int, int, error) {
	held, want, err := g.Control.Holders(ctx, root)
	if err == nil && held >= want && root == g.root {
		g.once.Do(g.gate)
	}
	return held, want, err
}

// A preview whose root is the same bytes as an object being PUT, expiring
// while the PUT is between storing (it found the preview's placement
// held) and recording: the CAR the PUT holds is not removed, the PUT
// places the root again from it, and the key names content nodes hold.
// Before, the expiry removed the CAR regardless of the PUT's hold: the
// PUT failed after recording the object, and the key's earlier version
// was replaced by content nobody held.
func TestPreviewExpiryRacingPutOfSameBytes(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	s := startS3Stack(t, "gw-preview-race", Config{Now: clock.Now}, nil, nil)
	ctx := t.Context()
	body := []byte("the same bytes, previewed as a one-file site and stored as an object")
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var carBuf bytes.Buffer
	rc, err := importer.WriteCAR(ctx, file, &carBuf, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := rc.String()
	if _, err := s.tg.ctl.DeployPreview(ctx, "pv", "media", time.Hour, bytes.NewReader(carBuf.Bytes())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the preview held", func() bool {
		held, want, err := s.tg.ctl.Holders(ctx, root)
		return err == nil && held >= want
	})
	if _, err := s.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("docs")}); err != nil {
		t.Fatal(err)
	}
	v1 := []byte("version one of the key")
	if _, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("docs"), Key: aws.String("k"), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}
	gated := &gatedHolders{Control: s.tg.ctl, root: root, gate: func() {
		clock.Add(2 * time.Hour)
		if err := s.tg.ctl.ExpirePreviews(context.Background()); err != nil {
			t.Errorf("expire previews: %v", err)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: s.tg.ctl, Store: gated, Bus: s.tg.ctl.cfg.Bus, DataDir: t.TempDir(), Name: "gated", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	gc := s3.New(s3.Options{Region: "us-east-1", Credentials: s.c.Options().Credentials, BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})

	_, putErr := gc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("docs"), Key: aws.String("k"), Body: bytes.NewReader(body)},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if putErr != nil {
		_, placed, _ := s.tg.ctl.placement(ctx, root)
		_, carErr := os.Stat(s.tg.ctl.contentPath(root))
		t.Fatalf("PUT: %v; root placed %v; CAR in the content store: %v", putErr, placed, carErr == nil)
	}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("docs"), Key: aws.String("k")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		t.Fatalf("GET k after the PUT: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("GET k after the PUT: %q, want %q", got, body)
	}
	waitFor(t, "the root held again", func() bool {
		held, want, err := s.tg.ctl.Holders(ctx, root)
		return err == nil && held >= want
	})
}
