package s3api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/s3api"
)

// neverHeld is the devnet's content store whose Holders never finds an
// object held. It tells when Holders is first asked about an object's
// root (one StoreCAR returned: a PUT waits for its holders, not a
// bucket root the server places on its own) and when an object's hold
// is released (the PUT gave up waiting and is answered next).
type neverHeld struct {
	s3api.ContentStore
	mu       sync.Mutex
	objects  map[string]bool
	waiting  chan string
	released chan string
}

func newNeverHeld(store s3api.ContentStore) *neverHeld {
	return &neverHeld{ContentStore: store, objects: map[string]bool{}, waiting: make(chan string, 1), released: make(chan string, 1)}
}

func (s *neverHeld) object(root string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[root]
}

func (s *neverHeld) StoreCAR(ctx context.Context, label, near string, car io.Reader) (string, error) {
	root, err := s.ContentStore.StoreCAR(ctx, label, near, car)
	if err == nil {
		s.mu.Lock()
		s.objects[root] = true
		s.mu.Unlock()
	}
	return root, err
}

func (s *neverHeld) Holders(ctx context.Context, root string) (int, int, error) {
	if s.object(root) {
		select {
		case s.waiting <- root:
		default:
		}
	}
	return 0, 1, nil
}

func (s *neverHeld) Hold(root string) func() {
	release := s.ContentStore.Hold(root)
	return func() {
		release()
		if s.object(root) {
			select {
			case s.released <- root:
			default:
			}
		}
	}
}

// neverHeldServer runs a second S3 API on the devnet with store and
// storeTimeout, logging to logs, and returns a client of it for k that
// does not retry.
func neverHeldServer(t *testing.T, n *network, store s3api.ContentStore, storeTimeout time.Duration, logs *lockedBuffer, k api.S3Key) *s3.Client {
	t.Helper()
	srv := sideServer(t, n, s3api.Config{Store: store, Name: "never-held", StoreTimeout: storeTimeout,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return sideClient(srv, k, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
}

const notHeldInTime = "s3 object not held in time"

// A PUT whose nodes never hold the object fails with ServiceUnavailable
// once StoreTimeout passed, with a warning, and releases its CAR's hold;
// a PUT its client gives up on while it waits ends without a warning.
func TestPutNotHeld(t *testing.T) {
	n := startNetwork(t)
	k := n.account(t, "never-held")
	const bucket = "never-held"
	if _, err := client(n, k).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}

	t.Run("StoreTimeout passed", func(t *testing.T) {
		logs := &lockedBuffer{}
		store := newNeverHeld(n.d.Control())
		c := neverHeldServer(t, n, store, 50*time.Millisecond, logs, k)
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("late.bin"), Body: bytes.NewReader(random(1000))})
		if code(err) != "ServiceUnavailable" {
			t.Fatalf("PUT never held: %v; want ServiceUnavailable\n%s", err, logs)
		}
		if !strings.Contains(logs.String(), notHeldInTime) {
			t.Fatalf("no %q warning in the logs:\n%s", notHeldInTime, logs)
		}
		select {
		case <-store.released: // before the answer
		default:
			t.Fatal("the object's CAR is still held after its PUT failed")
		}
	})

	t.Run("request cancelled", func(t *testing.T) {
		logs := &lockedBuffer{}
		store := newNeverHeld(n.d.Control())
		c := neverHeldServer(t, n, store, time.Hour, logs, k)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("gone.bin"), Body: bytes.NewReader(random(1000))})
			errc <- err
		}()
		select {
		case <-store.waiting:
		case err := <-errc:
			t.Fatalf("the PUT ended before it waited for holders: %v", err)
		}
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("the cancelled PUT succeeded")
		}
		select {
		case <-store.released: // waitHeld returned, and logged what it logs
		case <-time.After(testutil.Scale(30 * time.Second)):
			t.Fatal("the server still waits for the holders of a cancelled PUT")
		}
		if l := logs.String(); strings.Contains(l, notHeldInTime) || !strings.Contains(l, "wait for holders ended") {
			t.Fatalf("a cancelled PUT: want no %q warning, a debug line instead:\n%s", notHeldInTime, l)
		}
	})
}
