package s3api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
)

// KeySource finds access keys; *control.Control implements it.
type KeySource interface {
	// S3AccessKey returns the account and the secret of access key id;
	// ok is false for a key that does not exist.
	S3AccessKey(ctx context.Context, id string) (account, secret string, ok bool, err error)
}

// ContentStore stores and places content on nodes; *control.Control
// implements it with the deploy path's content store and placement.
type ContentStore interface {
	// StoreCAR verifies and keeps a CAR, has it placed on nodes and
	// returns its root.
	// near, when set, is a root whose holders are preferred (the bucket's).
	StoreCAR(ctx context.Context, label, near string, car io.Reader) (string, error)
	// StoreRoot keeps a bucket root's own blocks (the partial CAR read
	// from car: its directories, not the objects) and has it placed
	// near the bucket's previous root, and deployed to the site that
	// follows the bucket.
	StoreRoot(ctx context.Context, br api.BucketRoot, car io.Reader) error
	// Holders counts the live nodes holding root, and how many should.
	Holders(ctx context.Context, root string) (held, want int, err error)
	// Placed reports whether root is placed (nodes are ordered to hold
	// it), held yet or not.
	Placed(ctx context.Context, root string) (bool, error)
	// Hold keeps root's CAR in the content store, where Keep would place
	// it again from, until release is called: collecting root meanwhile
	// does not remove it. A store holds from before StoreCAR (or Keep)
	// until it has answered.
	Hold(root string) (release func())
	// OpenCAR opens root's CAR, verified: as stored, or fetched from
	// the nodes holding it. A store that also has
	// OpenCARWithin(ctx, root, maxBytes) (control.Control) is given the
	// largest CAR the object may have, from its size, to bound a fetch.
	OpenCAR(ctx context.Context, root string) (*os.File, error)
	// Keep is called once a reference to root is recorded in a bucket:
	// it clears a collector's mark on root's placement, and places root
	// again (under label) when the collector unplaced it before the
	// record, returning true: then the caller waits for its holders.
	Keep(ctx context.Context, label, root string) (bool, error)
	// PlaceAgain places root again (under label, near the holders of
	// near) from its CAR when fewer live nodes hold it or are ordered to
	// than should: its holders failed it, or left.
	PlaceAgain(ctx context.Context, label, near, root string) error
}

// Config configures a Server. Listener, Keys, Store, Bus and DataDir are
// required.
type Config struct {
	// Listener is where the S3 API is served (its own port).
	Listener net.Listener
	// TLS, when set, serves HTTPS on Listener with these certificates
	// (HTTP/1.1, as S3 clients speak it): e.g. an ACME manager's, or
	// FileCertificate's for certificate files. Default nil: plain HTTP,
	// for a private network or behind a TLS-terminating proxy.
	TLS *tls.Config
	// Keys authenticates requests: access key id → account, secret.
	Keys KeySource
	// Store keeps objects' CARs and places them on nodes.
	Store ContentStore
	// Bus holds the s3_buckets bucket. The caller owns it.
	Bus *events.Bus
	// DataDir is where uploads are staged (DataDir/s3-uploads); a
	// staged upload is removed once stored or refused, and on start.
	DataDir string

	// Domain, when set, turns on virtual-hosted-style requests: a Host
	// BUCKET.<Domain> names the bucket. Path-style requests are always
	// served. Default "" (path-style only).
	Domain string
	// Region is the region answered by GetBucketLocation. Clients may
	// sign with any region. Default "us-east-1".
	Region string
	// MaxObjectBytes bounds one PUT, and one part of a multipart
	// upload. Default 5 GiB (S3's limits).
	MaxObjectBytes int64
	// MaxMultipartBytes bounds an object made by a multipart upload (its
	// parts together): the part past it is refused with EntityTooLarge.
	// Default 5 TiB (S3's limit).
	MaxMultipartBytes int64
	// StoreTimeout bounds the wait for nodes to hold a new object before
	// the PUT fails with ServiceUnavailable. Default 2 min.
	StoreTimeout time.Duration
	// MaxClockSkew bounds the difference between a signed request's time
	// and the server's. Default 15 min (S3's).
	MaxClockSkew time.Duration
	// Charges, when set, bills storage and traffic: each account is
	// charged for the bytes its buckets hold over time (billing.go) and
	// for the bytes of its objects GETs serve (meter.go). Default nil:
	// not billed.
	Charges Charger
	// Accounts, when set, refuses writes (new buckets, objects, copies,
	// uploads) from frozen accounts, and GETs of their objects, with
	// AccountProblem. Default nil.
	Accounts Accounts
	// StoragePrice is what one GiB stored for 30 days costs, in balance
	// bytes (the unit accounts are funded and charged in). Default 1 GiB:
	// storing a file for a month costs what serving it once does.
	StoragePrice uint64
	// StorageInterval is how often storage is billed. Default 1 h.
	StorageInterval time.Duration
	// MaxUploads bounds the multipart uploads one account may have open
	// (created, not completed nor aborted) on this server: creating one
	// more is refused with InvalidRequest. Default 1,000 (a page of S3's
	// ListMultipartUploads).
	MaxUploads int
	// UploadExpiry is how long a multipart upload may go without a part
	// (or, with none, since it was created) before it is removed with
	// its staged parts, as if aborted. Default 24 h.
	UploadExpiry time.Duration
	// Name names this server among the cluster's S3 servers (gateways
	// sharing the bus); it must be unique there. Default the bus's name
	// (the gateway's --name).
	Name string
	// AdvertiseURL is where the cluster's other S3 servers reach this
	// one, to forward the parts of a multipart upload it holds (a part
	// may reach any gateway behind a load balancer). Default URL(): set
	// it when Listener is bound to a wildcard address.
	AdvertiseURL string
	// ForwardTLS is the client TLS config for forwarding to other
	// servers over HTTPS (its RootCAs, for a private CA); the server name
	// checked is the request's own host. Default: the system roots.
	ForwardTLS *tls.Config
	// MeterName is the charger name the bytes this server serves are
	// charged under in the ledger (its batches' sequence is per name), so
	// it must be unique among the cluster's S3 servers, as a gateway's
	// name is. Default "s3-served/" and Name.
	MeterName string
	// MeterInterval is how often the bytes served (GETs of objects) are
	// charged to their buckets' accounts, when Charges is set. Default
	// 10 s, the gateway's.
	MeterInterval time.Duration
	// Logger receives the API's logs (never a secret). Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// ErrConfig is returned by New for an invalid Config.
var ErrConfig = errors.New("s3api: invalid config")

const (
	defaultMaxObjectBytes = 5 << 30
	defaultMaxMultipart   = 5 << 40
	defaultStoreTimeout   = 2 * time.Minute
	defaultClockSkew      = 15 * time.Minute
	defaultMaxUploads     = 1000
	defaultUploadExpiry   = 24 * time.Hour
)

// MaxCARBytes is the largest CAR an object stored under the limits
// maxObject and maxMultipart (Config.MaxObjectBytes, MaxMultipartBytes;
// 0 for their defaults) may have: the larger limit, and 1/64 more plus
// 1 MiB for the blocks' CIDs and the UnixFS nodes linking them (about
// 100 bytes in 256 KiB). A gateway bounds the CARs it stores and fetches
// from nodes with it (control.Config.MaxContentBytes).
func MaxCARBytes(maxObject, maxMultipart int64) int64 {
	if maxObject <= 0 {
		maxObject = defaultMaxObjectBytes
	}
	if maxMultipart <= 0 {
		maxMultipart = defaultMaxMultipart
	}
	return carBytes(max(maxObject, maxMultipart))
}

// carBytes bounds the CAR of an object of n bytes (MaxCARBytes).
func carBytes(n int64) int64 {
	return n + n/64 + 1<<20
}

func (c Config) normalize() (Config, error) {
	switch {
	case c.Listener == nil, c.Keys == nil, c.Store == nil, c.Bus == nil, c.DataDir == "":
		return c, errors.Join(ErrConfig, errors.New("Listener, Keys, Store, Bus and DataDir are required"))
	}
	c.Domain = strings.ToLower(strings.Trim(c.Domain, "."))
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.MaxObjectBytes <= 0 {
		c.MaxObjectBytes = defaultMaxObjectBytes
	}
	if c.MaxMultipartBytes <= 0 {
		c.MaxMultipartBytes = defaultMaxMultipart
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = defaultStoreTimeout
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = defaultClockSkew
	}
	if c.StoragePrice == 0 {
		c.StoragePrice = gib
	}
	if c.StorageInterval <= 0 {
		c.StorageInterval = time.Hour
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = defaultMaxUploads
	}
	if c.UploadExpiry <= 0 {
		c.UploadExpiry = defaultUploadExpiry
	}
	if c.Name == "" {
		c.Name = c.Bus.Name()
	}
	if c.MeterName == "" {
		c.MeterName = "s3-served/" + c.Name
	}
	if c.MeterInterval <= 0 {
		c.MeterInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
