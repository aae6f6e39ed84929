package s3api_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"

	"github.com/verity-cdn/verity/s3api"
)

// On a replicated bus a KV Get is a "direct get" that any replica answers
// (and ListKeys a consumer on any replica), so it may miss a write
// acknowledged a moment ago. The reads the collector's decision rests on
// are the leader's: its last read of the buckets (References: the list
// of buckets, each record, the shards it names) and a store's Keep (the
// placement, where it must find the collector's mark). Every read those
// make of this bucket's record, its shards and its object's placement is
// a STREAM.MSG.GET (answered only by the stream's leader); none is a
// direct get, and no consumer lists the buckets.
func TestCollectorReadsFromTheLeader(t *testing.T) {
	n := startNetwork(t)
	c := client(n, n.account(t, "lena"))
	ctx := t.Context()
	const bucket = "lena-leader-reads"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	var cidHdr, root string
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a.bin"), Body: bytes.NewReader(random(1000))},
		s3.WithAPIOptions(headerCatcher(&cidHdr, &root))); err != nil {
		t.Fatal(err)
	}

	nc := n.d.Bus().Conn()
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
	refs, err := s3api.NewReferences(n.d.Bus())
	if err != nil {
		t.Fatal(err)
	}
	got, err := refs.Referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got[cidHdr] || !got[root] {
		t.Fatalf("the object %s and root %s are not among the referenced", cidHdr, root)
	}
	if placed, err := n.d.Coordinator().Keep(ctx, cidHdr, "s3_"+bucket); err != nil || !placed {
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
