package s3api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/s3api"
)

// oneKey is a KeySource of a single access key.
type oneKey struct{ id, secret, account string }

func (k oneKey) S3AccessKey(_ context.Context, id string) (string, string, bool, error) {
	return k.account, k.secret, id == k.id, nil
}

// noNodes is a content store whose content is placed and held at once,
// on no node: enough for a server that records buckets and objects.
// Other methods are not called.
type noNodes struct{ s3api.ContentStore }

func (noNodes) StoreRoot(context.Context, api.BucketRoot, io.Reader) error {
	return nil
}
func (noNodes) Holders(context.Context, string) (int, int, error)        { return 1, 1, nil }
func (noNodes) Placed(context.Context, string) (bool, error)             { return true, nil }
func (noNodes) Hold(string) func()                                       { return func() {} }
func (noNodes) Keep(context.Context, string, string) (bool, error)       { return true, nil }
func (noNodes) PlaceAgain(context.Context, string, string, string) error { return nil }

// On a replicated bus a KV Get is a "direct get" that any replica answers
// (and ListKeys a consumer on any replica), so it may miss a write
// acknowledged a moment ago. The reads the collector's decision rests on
// are the leader's: its last read of the buckets (References: the list
// of buckets, each record, the shards it names) and a store's Keep (the
// placement, where it must find the collector's mark). Every read those
// make of this bucket's record, its shards and its object's placement is
// a STREAM.MSG.GET (answered only by the stream's leader); none is a
// direct get, and no consumer lists the buckets.
//
// The reads are watched on a bus of their own with nothing else running:
// a gateway's other parts read the same keys with direct gets whenever
// they have reason to (the publisher when a holder is added, the S3 API
// when a request names the bucket, its check of the buckets' roots), at
// times no test controls.
func TestCollectorReadsFromTheLeader(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	bus, err := events.Open(ctx, events.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "gateway", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()

	// The bucket and its object, recorded by an S3 API that is stopped
	// before the reads.
	const bucket, account = "lena-leader-reads", "lena"
	key := oneKey{id: "VKLEADERREADSTEST000", secret: "leader-reads-secret-leader-reads-secret", account: account}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := s3api.New(s3api.Config{Listener: ln, Keys: key, Store: noNodes{}, Bus: bus, DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key.id, key.secret, ""),
		BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	obj, err := cid.Sum(0x55, 0x1e, random(1000))
	if err != nil {
		t.Fatal(err)
	}
	cidHdr := obj.String()
	root, err := s3api.PutKey(ctx, srv, account, bucket, "a.bin", cidHdr, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The object's placement, as a store of it leaves it once held.
	pkv, err := bus.KV(events.BucketPlacements)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(coordinator.Placement{Root: cidHdr, Replicas: 1, Sites: []string{s3api.PlacementLabel(bucket)},
		Nodes: map[string]coordinator.Holder{"n1": {State: coordinator.HolderPinned}}})
	if _, err := pkv.Create(ctx, cidHdr, p); err != nil {
		t.Fatal(err)
	}

	// The collector's side: a connection of its own.
	reader, err := events.Open(ctx, events.Config{URL: bus.ClientURL(), Name: "collector", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	coord, err := coordinator.New(ctx, coordinator.Config{Bus: reader, CollectInterval: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	refs, err := s3api.NewReferences(reader)
	if err != nil {
		t.Fatal(err)
	}

	nc := reader.Conn()
	type request struct{ subject, body string }
	// A channel subscription: the connection's reader puts each request
	// in it as it reads it, so once a Flush has returned every request
	// sent before it is there (a handler might still be running).
	reqs := make(chan *nats.Msg, 1<<16)
	sub, err := nc.ChanSubscribe("$JS.API.>", reqs)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := refs.Referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got[cidHdr] || !got[root] {
		t.Fatalf("the object %s and root %s are not among the referenced", cidHdr, root)
	}
	if placed, err := coord.Keep(ctx, cidHdr, "s3_"+bucket); err != nil || !placed {
		t.Fatalf("keep: %v, placed %v", err, placed)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sub.Unsubscribe()
	var seen []request
	for len(reqs) > 0 {
		m := <-reqs
		seen = append(seen, request{m.Subject, string(m.Data)})
	}
	names := map[string]string{
		"the bucket's record":    "$KV.s3_buckets." + bucket,
		"the bucket's shards":    "$KV.s3_index." + bucket + "/",
		"the object's placement": "$KV.placements." + cidHdr,
	}
	for what, name := range names {
		leader := 0
		for _, r := range seen {
			if !strings.Contains(r.subject+" "+r.body, name) {
				continue
			}
			switch {
			case strings.HasPrefix(r.subject, "$JS.API.DIRECT.GET."):
				t.Errorf("%s read with a direct get: %s %s", what, r.subject, r.body)
			case strings.HasPrefix(r.subject, "$JS.API.STREAM.MSG.GET."):
				leader++
			}
		}
		if leader == 0 {
			t.Errorf("%s not read from the leader", what)
		}
	}
	for _, r := range seen {
		if strings.HasPrefix(r.subject, "$JS.API.CONSUMER.") && strings.Contains(r.subject, "KV_s3_buckets") {
			t.Errorf("a consumer lists the buckets: %s", r.subject)
		}
	}
}
