package control

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
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
