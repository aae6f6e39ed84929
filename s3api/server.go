package s3api

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// Server is the S3-compatible API, an http.Handler served on its own
// listener by Run.
type Server struct {
	cfg     Config
	log     *slog.Logger
	buckets jetstream.KeyValue
	srv     *http.Server
	locks   sync.Map // bucket name → *sync.Mutex: serializes its updates here
	indexes indexCache
	records recordCache
	shards  shardStore    // the buckets' indexes of keys (index.go)
	trees   treeCache     // their trees' directory blocks (treeinc.go)
	meter   *ledger.Meter // nil without Config.Charges
	uploads openUploads
	// uploadLocks (upload id → *sync.Mutex) serialize the commits of an
	// upload's parts and its Complete's taking it (multipart.go).
	uploadLocks sync.Map
	// bucketsLeader is buckets read from its stream's leader, for the
	// sweep's deciding read; orphans is what the sweep found
	// (rootcheck.go).
	bucketsLeader *events.LeaderKV
	orphans       orphanShards
	// tag is this server's among the cluster's (cluster.go); servers
	// is the s3_servers bucket, fwd sends requests to the others.
	tag     string
	servers jetstream.KeyValue
	fwd     forwarder
	roots   rootQueue // new roots to place (roots.go)
	// beforeRootPlaced, when set (tests: export_test.go), is called
	// before a queued root is placed.
	beforeRootPlaced func(ctx context.Context, bucket, root string)
	// partHooks, when set (tests: export_test.go), are called as a part
	// is committed to its upload.
	partHooks partHooks
	// bodyIdle bounds the wait for the next bytes of a request's body.
	bodyIdle time.Duration

	closeOnce sync.Once
}

// New opens the buckets' state on the bus and prepares the staging
// directory. Serve it with Run; release it with Close.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, bodyIdle: bodyIdleTimeout, roots: newRootQueue()}
	if s.buckets, err = cfg.Bus.KV(events.BucketS3Buckets); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	if s.bucketsLeader, err = cfg.Bus.LeaderKV(events.BucketS3Buckets); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	if s.shards.kv, err = cfg.Bus.KV(events.BucketS3Index); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	if s.servers, err = cfg.Bus.KV(events.BucketS3Servers); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	s.tag = serverTag(cfg.Name)
	if s.cfg.AdvertiseURL == "" {
		s.cfg.AdvertiseURL = s.URL()
	}
	// What a stopped gateway was staging: open multipart uploads go on,
	// the rest (PUT bodies, parts cut short, joins) is garbage.
	if err := os.MkdirAll(s.uploadsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("s3api: %w", err)
	}
	s.recoverUploads()
	if cfg.Charges != nil {
		s.meter = ledger.NewMeter(ledger.MeterConfig{Applier: cfg.Charges, Name: cfg.MeterName, Interval: cfg.MeterInterval, Logger: s.log.With("component", "meter"), Now: cfg.Now})
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		// An idle keep-alive connection is closed: otherwise anyone, with
		// no key, holds one open for good after a single request.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10, // S3 allows 8 KiB of user metadata
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (s *Server) uploadsDir() string { return filepath.Join(s.cfg.DataDir, "s3-uploads") }

// URL is the API's base URL (path-style): https with Config.TLS.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "https://" + s.cfg.Listener.Addr().String()
	}
	return "http://" + s.cfg.Listener.Addr().String()
}

// Run serves until ctx ends or Close.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if s.cfg.Charges != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runBilling(bctx)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.runUploadExpiry(bctx)
	}()
	go func() {
		defer wg.Done()
		s.runRegistry(bctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runRoots(bctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runRootCheck(bctx)
	}()
	ln := s.cfg.Listener
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, http11(s.cfg.TLS))
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving; requests in flight are cut, and the bytes served
// and not charged yet are charged. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		_ = s.srv.Close()
		s.fwd.close()
		if s.meter != nil {
			err = s.meter.Close()
		}
	})
	return err
}

type ctxKey struct{}

// requestID is the request's id, made when it was first asked for.
func requestID(r *http.Request) string {
	if id, ok := r.Context().Value(ctxKey{}).(string); ok {
		return id
	}
	return "-"
}

// target splits a request into bucket and key, path-style
// (/BUCKET/KEY) or virtual-hosted-style (BUCKET.<Domain>/KEY).
func (s *Server) target(r *http.Request) (bucket, key string) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.ToLower(host)
	p := strings.TrimPrefix(r.URL.Path, "/")
	if s.cfg.Domain != "" {
		if b, ok := strings.CutSuffix(host, "."+s.cfg.Domain); ok && b != "" {
			return b, p
		}
	}
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// ServeHTTP authenticates the request and routes it to the S3 operation
// it names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, strings.ToUpper(hex.EncodeToString(id[:]))))
	w.Header().Set("x-amz-request-id", requestID(r))
	w.Header().Set("Server", "Verity")
	who, err := s.authenticate(r.Context(), r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: s.bodyIdle}
	}
	bucket, key := s.target(r)
	q := r.URL.Query()
	if id := q.Get("uploadId"); id != "" && key != "" && !s.ownUpload(id) {
		// Another server of the cluster holds this upload's parts.
		if err := s.forward(w, r, uploadOwner(id)); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	if isWrite(r, key, q) {
		if err := s.checkWriter(r.Context(), who); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.route(w, r, who, bucket, key, q); err != nil {
		s.writeError(w, r, err)
	}
}

// route calls the operation; what is not supported answers
// NotImplemented (or MethodNotAllowed).
func (s *Server) route(w http.ResponseWriter, r *http.Request, who identity, bucket, key string, q map[string][]string) error {
	has := func(k string) bool { _, ok := q[k]; return ok }
	for _, sub := range unsupportedSubresources {
		if has(sub) {
			return ErrNotImplemented.with("The %q subresource is not implemented yet.", sub)
		}
	}
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return s.listBuckets(w, r, who)
		}
		return ErrMethodNotAllowed
	case key == "":
		switch r.Method {
		case http.MethodPut:
			return s.createBucket(w, r, who, bucket)
		case http.MethodDelete:
			return s.deleteBucket(w, r, who, bucket)
		case http.MethodHead:
			return s.headBucket(w, r, who, bucket)
		case http.MethodPost:
			if has("delete") {
				return s.deleteObjects(w, r, who, bucket)
			}
			return ErrNotImplemented
		case http.MethodGet:
			switch {
			case has("location"):
				return s.bucketLocation(w, r, who, bucket)
			case has("versioning"):
				return s.bucketVersioning(w, r, who, bucket)
			case has("uploads"):
				return s.listMultipartUploads(w, r, who, bucket)
			}
			return s.listObjects(w, r, who, bucket)
		}
		return ErrMethodNotAllowed
	}
	switch {
	case has("uploads"):
		if r.Method == http.MethodPost {
			return s.createMultipart(w, r, who, bucket, key)
		}
		return ErrMethodNotAllowed
	case has("uploadId"):
		switch r.Method {
		case http.MethodPut:
			return s.uploadPart(w, r, who, bucket, key)
		case http.MethodGet:
			return s.listParts(w, r, who, bucket, key)
		case http.MethodPost:
			return s.completeMultipart(w, r, who, bucket, key)
		case http.MethodDelete:
			return s.abortMultipart(w, r, who, bucket, key)
		}
		return ErrMethodNotAllowed
	}
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return s.copyObject(w, r, who, bucket, key)
		}
		return s.putObject(w, r, who, bucket, key)
	case http.MethodGet, http.MethodHead:
		return s.getObject(w, r, who, bucket, key)
	case http.MethodDelete:
		return s.deleteObject(w, r, who, bucket, key)
	}
	return ErrMethodNotAllowed
}

// isWrite reports whether r adds content: creating a bucket, putting or
// copying an object, a multipart upload's create, part and complete.
// Reads and deletions are not writes: a frozen account can still get its
// data out and remove it.
func isWrite(r *http.Request, key string, q map[string][]string) bool {
	switch r.Method {
	case http.MethodPut:
		return true
	case http.MethodPost:
		_, del := q["delete"]
		return key != "" || !del
	}
	return false
}

// unsupportedSubresources are S3 subresources this increment does not
// implement: a request naming one is answered NotImplemented rather than
// taken for a plain object or bucket request.
var unsupportedSubresources = []string{
	"acl", "policy", "cors", "lifecycle", "tagging", "website", "logging", "notification",
	"replication", "encryption", "object-lock", "retention", "legal-hold", "versionId", "versions",
	"torrent", "restore", "select", "inventory", "metrics", "analytics", "accelerate",
	"requestPayment", "ownershipControls", "publicAccessBlock", "intelligent-tiering", "attributes",
}

// bodyIdleTimeout is how long a request's body may stop arriving before
// the request fails with RequestTimeout, as S3's does: otherwise a client
// holds its connection, a goroutine and a staged file as long as it
// likes by sending nothing more.
const bodyIdleTimeout = time.Minute

// ErrRequestTimeout answers a body that stopped arriving.
var ErrRequestTimeout = &Error{Code: "RequestTimeout", Status: http.StatusBadRequest, Message: "Your socket connection to the server was not read from or written to within the timeout period."}

// idleBody moves the connection's read deadline before each read of the
// body, so a body may take as long as it needs but not stop.
// Once the body has ended it sets no deadline: net/http then reads the
// connection in the background (to notice a client that leaves) and
// would take a deadline for a client gone.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done = true
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrRequestTimeout
	}
	return n, err
}
