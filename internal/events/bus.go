package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KV bucket names.
const (
	BucketSites      = "sites"
	BucketNodes      = "nodes"
	BucketPlacements = "placements"
	BucketTokens     = "tokens"
	BucketDeploys    = "deploys"
	// BucketTLS holds the gateways' certificates, ACME account and locks
	// (internal/acme), shared by every gateway of a cluster.
	BucketTLS = "tls"
	// BucketDomains holds custom domains attached to sites (control).
	BucketDomains = "domains"
	// BucketOperators holds node operators' credentials (hashes only).
	BucketOperators = "operators"
	// BucketPreviews holds preview deploys (control), by <root>.<site>.
	BucketPreviews = "previews"
	// BucketWebhooks holds sites' webhook endpoints (control), by
	// "<site>.<id>", their secrets sealed; BucketWebhookLog their latest
	// delivery attempts under the same keys.
	BucketWebhooks   = "webhooks"
	BucketWebhookLog = "webhook_log"
	// BucketS3Keys holds S3 access keys (control), by access key id,
	// their secrets sealed; BucketS3Buckets the S3 buckets (s3api), by
	// bucket name: owner, content root, its history and the shards of
	// its index of keys (BucketS3Index).
	BucketS3Keys    = "s3_keys"
	BucketS3Buckets = "s3_buckets"
	// BucketS3Index holds the S3 buckets' indexes of keys (s3api), in
	// shards of sorted key ranges, each under "<bucket>/<id>", written once
	// and named by the bucket's record.
	BucketS3Index = "s3_index"
	// BucketS3Servers holds the cluster's S3 API servers (s3api), by
	// the tag their multipart upload ids carry: where to forward a part
	// sent to another server. An entry lives S3ServersTTL unless renewed.
	BucketS3Servers = "s3_servers"
	// BucketSessions holds the console's sign-in sessions (control), by
	// the SHA-256 of the session cookie; an entry lives at most
	// SessionBucketTTL.
	BucketSessions = "console_sessions"
	// BucketLeases holds leases that let one process of a cluster at a
	// time run a periodic job (the coordinator's collector), by job name.
	BucketLeases = "leases"
)

// SessionBucketTTL bounds how long BucketSessions keeps an entry: the
// longest console session there can be.
const SessionBucketTTL = 24 * time.Hour

// S3ServersTTL is how long BucketS3Servers keeps an entry its server
// stopped renewing.
const S3ServersTTL = 2 * time.Minute

// bucketTTL is the age at which a bucket's entries expire, for the
// buckets whose entries do.
var bucketTTL = map[string]time.Duration{BucketSessions: SessionBucketTTL, BucketS3Servers: S3ServersTTL}

// bucketHistory is how many revisions each bucket keeps per key.
var bucketHistory = map[string]uint8{
	BucketSites:      16,
	BucketNodes:      1,
	BucketPlacements: 1,
	BucketTokens:     1,
	BucketDeploys:    1,
	BucketTLS:        1,
	BucketDomains:    1,
	BucketOperators:  1,
	BucketPreviews:   1,
	BucketWebhooks:   1,
	BucketWebhookLog: 1,
	BucketS3Keys:     1,
	BucketS3Buckets:  1,
	BucketS3Index:    1,
	BucketS3Servers:  1,
	BucketSessions:   1,
	BucketLeases:     1,
}

// Bus is a connection to the event stream and KV buckets. Its methods are
// safe for concurrent use.
type Bus struct {
	cfg Config
	log *slog.Logger

	ns  *server.Server // embedded server, nil with Config.URL
	nc  *nats.Conn
	js  jetstream.JetStream
	kvs map[string]jetstream.KeyValue

	ctx    context.Context // canceled by Close; parent of handler contexts
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   map[*Subscription]struct{}
	once   sync.Once
}

// Open connects to NATS (or starts the embedded server), and creates or
// updates the event stream and the KV buckets.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: cfg.Logger.With("component", "events"), subs: make(map[*Subscription]struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.open(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	opts := []nats.Option{
		nats.Name(b.cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { b.log.Info("nats reconnected", "url", nc.ConnectedUrl()) }),
	}
	url := b.cfg.URL
	if url == "" {
		ns, err := startServer(b.cfg)
		if err != nil {
			return err
		}
		b.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("events: connect: %w", err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("events: jetstream: %w", err)
	}
	b.js = js
	err = untilPlaced(ctx, b.log, "stream "+StreamName, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        StreamName,
			Description: "Verity events",
			Subjects:    []string{SubjectAll},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      b.cfg.MaxAge,
			Duplicates:  b.cfg.DedupeWindow,
			MaxMsgSize:  MaxEventBytes,
			Replicas:    b.cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("events: stream %s: %w", StreamName, err)
	}
	b.kvs = make(map[string]jetstream.KeyValue, len(bucketHistory))
	for name, hist := range bucketHistory {
		var kv jetstream.KeyValue
		err := untilPlaced(ctx, b.log, "KV bucket "+name, func(ctx context.Context) error {
			var err error
			kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:   name,
				History:  hist,
				TTL:      bucketTTL[name],
				Storage:  jetstream.FileStorage,
				Replicas: b.cfg.Replicas,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("events: KV bucket %s: %w", name, err)
		}
		b.kvs[name] = kv
	}
	return nil
}

// Codes of JetStream API errors a cluster that is still forming answers:
// a server not yet routed to the others counts as offline, so a stream
// with Replicas > 1 finds no peers to be placed on, or the meta group has
// no leader yet.
const (
	errCodeNoPeers      jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeClusterNotUp jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
)

// untilPlaced runs create, and again after a pause while it fails because
// the cluster is still forming (a server started a moment later than the
// others, or a meta leader not elected yet, when a request gets no answer
// at all), until ctx ends: Open waits up to Config.ConnectTimeout for the
// cluster, as for the connection. Each attempt has its own deadline, so
// one sent before the cluster could answer does not hold the rest of the
// wait; create is idempotent. Any other error returns at once.
func untilPlaced(ctx context.Context, log *slog.Logger, what string, create func(context.Context) error) error {
	pause, attempt := 50*time.Millisecond, time.Second
	warned := false
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := create(actx)
		cancel()
		if err == nil || !(errors.Is(err, context.DeadlineExceeded) || clusterForming(err)) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (the cluster did not become ready: %w)", err, ctx.Err())
		}
		if !warned {
			log.Warn("events: the JetStream cluster is not ready; retrying", "what", what, "err", err)
			warned = true
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (the cluster did not become ready: %w)", err, ctx.Err())
		case <-t.C:
		}
		pause, attempt = min(2*pause, time.Second), min(2*attempt, 5*time.Second)
	}
}

// clusterForming reports whether err is one a forming cluster answers.
func clusterForming(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeNoPeers || apiErr.ErrorCode == errCodeClusterNotUp
	}
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders)
}

func startServer(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName: cfg.Name,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
		// No HTTP monitoring, no cluster: this server serves this process
		// and, with Listen, local peers.
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %w", ErrServer, cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("%w: listen port %q: %w", ErrServer, port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServer, err)
	}
	ns.SetLoggerV2(&natsLogger{log: cfg.Logger.With("component", "nats-server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(cfg.ConnectTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("%w: not ready after %s", ErrServer, cfg.ConnectTimeout)
	}
	return ns, nil
}

// ClientURL is the nats:// URL other processes can connect to: the
// embedded server's listening address with Config.Listen, the configured
// URL with Config.URL, and "" for an in-process-only embedded server.
func (b *Bus) ClientURL() string {
	if b.ns == nil {
		return b.cfg.URL
	}
	if b.cfg.Listen == "" {
		return ""
	}
	return b.ns.ClientURL()
}

// Name is Config.Name, the default Source of emitted events.
func (b *Bus) Name() string { return b.cfg.Name }

// Replicas is the replica count of the stream and buckets.
func (b *Bus) Replicas() int { return b.cfg.Replicas }

// Conn returns the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the underlying JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// KV returns one of the buckets BucketSites, BucketNodes, BucketPlacements,
// BucketTokens, BucketDeploys, BucketOperators.
func (b *Bus) KV(name string) (jetstream.KeyValue, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	kv, ok := b.kvs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBucket, name)
	}
	return kv, nil
}

// Publish stores ev on the stream. An event whose id was published within
// Config.DedupeWindow is not stored again (and Publish returns nil). A zero
// Time is set to now and an empty Source to Config.Name.
func (b *Bus) Publish(ctx context.Context, ev Event) error {
	if b.isClosed() {
		return ErrClosed
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Source == "" {
		ev.Source = b.cfg.Name
	}
	if len(ev.Data) == 0 {
		ev.Data = json.RawMessage("null")
	}
	if err := ev.check(); err != nil {
		return err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return &EventError{Field: "data", Err: fmt.Errorf("%w: %w", ErrInvalidEvent, err)}
	}
	if len(body) > MaxEventBytes {
		return &EventError{Field: "envelope", Err: ErrInvalidEvent}
	}
	ack, err := b.js.Publish(ctx, ev.Type.Subject(), body, jetstream.WithMsgID(ev.ID))
	if err != nil {
		return fmt.Errorf("events: publish %s %s: %w", ev.Type, ev.ID, err)
	}
	if ack.Duplicate {
		b.log.Debug("duplicate event dropped", "type", ev.Type, "id", ev.ID)
	}
	return nil
}

// Emit builds an event of type t with Source Config.Name and publishes it.
func (b *Bus) Emit(ctx context.Context, t Type, data any) (Event, error) {
	ev, err := New(t, b.cfg.Name, data)
	if err != nil {
		return Event{}, err
	}
	return ev, b.Publish(ctx, ev)
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close stops every subscription, closes the connection and shuts the
// embedded server down. It is idempotent.
func (b *Bus) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		subs := make([]*Subscription, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		b.cancel()
		for _, s := range subs {
			s.Stop()
		}
		if b.nc != nil {
			b.nc.Close()
		}
		if b.ns != nil {
			b.ns.Shutdown()
			b.ns.WaitForShutdown()
		}
	})
	return nil
}
