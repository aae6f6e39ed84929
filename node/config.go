package node

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxCertValidity is the longest certificate validity browsers accept for
// serverCertificateHashes.
const MaxCertValidity = 14 * 24 * time.Hour

// Config configures a Node. The zero value of every field except DataDir has
// a documented default.
type Config struct {
	// DataDir holds the identity, certificates and blocks. Required.
	DataDir string

	// HTTPAddr is the TCP address of the HTTP API. Default "127.0.0.1:0".
	HTTPAddr string
	// WebTransportAddr is the UDP address of the WebTransport server.
	// Default "127.0.0.1:0".
	WebTransportAddr string
	// DisableWebTransport: the node serves no WebTransport and publishes
	// no WebTransport URL (a node behind NAT without a forwarded UDP port
	// for it, reachable over WebRTC instead). Default false.
	DisableWebTransport bool
	// PublicHost is the IP literal used in the URLs the node publishes.
	// Default "127.0.0.1". Browsers need an IP literal for WebTransport
	// with certificate hashes.
	PublicHost string

	// CertValidity is the validity of each WebTransport certificate.
	// Default 13 days; at most MaxCertValidity.
	CertValidity time.Duration
	// CertRotateBefore: the current certificate is replaced by the next one
	// when less than this is left. Default 3 days; must be less than
	// CertValidity.
	CertRotateBefore time.Duration

	// MaxHeaderBytes bounds HTTP request heads. Default 16 KiB.
	MaxHeaderBytes int
	// MaxBlockSize is the largest block ImportCAR accepts. Default 2 MiB.
	MaxBlockSize int
	// PinSourceStall: a pin's source (the gateway's CAR or another
	// holder) that delivers less than 64 KiB in any such interval, its
	// response head counted, is abandoned for the next source, so a
	// trickling or hung source cannot hold a pin up. Default 30s.
	PinSourceStall time.Duration
	// ReadHeaderTimeout bounds reading an HTTP request head and a
	// WebTransport stream's wire.Request. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle HTTP keep-alive connections and idle QUIC
	// connections. Default 60s.
	IdleTimeout time.Duration
	// WriteTimeout bounds a whole HTTP response, and each write on a
	// WebTransport stream. Default 30 minutes.
	WriteTimeout time.Duration
	// MaxStreamsPerSession is the number of WebTransport streams served at
	// once per session; more wait. Default 64.
	MaxStreamsPerSession int
	// DisableBao: answer stream requests with the plain CAR even when the
	// client accepts the bao16 block encoding (docs/protocol.md §3.2),
	// saving the encoding's hashing (about 0.07 ms per 256 KiB block with
	// SIMD) at the cost of the client's time to first verified byte.
	// Default false.
	DisableBao bool

	// Payments configures vouchers, receipts, the credit window and
	// settlement (see PaymentConfig). Receipts are kept under
	// DataDir/receipts.
	Payments PaymentConfig

	// MaxEgress caps the bytes per second the node sends in content
	// responses, all clients and transports together (an operator's
	// bandwidth limit; `verity node --max-egress`). Default 0: unlimited.
	MaxEgress int64

	// StatusPublic serves the status page (GET /, GET /status) to every
	// client; by default only to loopback clients, since it names
	// accounts, sessions and recent errors. Default false.
	StatusPublic bool
	// WebRTC configures the WebRTC peer (see WebRTCConfig); on by default.
	WebRTC WebRTCConfig

	// Coordinator is the URL of the coordinator to join (a gateway's base
	// URL, e.g. https://gw.example). Run keeps the node joined, with its
	// signed record and Status in heartbeats, and leaves on the way out.
	// Empty: the node joins nothing.
	Coordinator string
	// OperatorToken is the credential of the node's operator
	// ("vop_NAME.SECRET"), issued by the gateway's admin (`verity
	// operators create NAME`); the coordinator refuses a join without a
	// valid one. Default none.
	OperatorToken string
	// CoordinatorClient dials the coordinator. Default http.DefaultClient.
	CoordinatorClient *http.Client
	// Region is the operator-declared region reported to the coordinator
	// (e.g. "NL" or "eu-west"). Default none.
	Region string
	// Capacity is the storage offered, in bytes, reported to the
	// coordinator. Default: the size of DataDir's filesystem.
	Capacity int64
	// LoadCapacity is the number of requests in flight that counts as full
	// load (1.0) in status reports. Default 256.
	LoadCapacity int
	// Version is the software version reported to the coordinator.
	// Default: the main module's version from the build info.
	Version string

	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock used for certificates and records. Default time.Now.
	Now func() time.Time
	// Registry, when set, also receives the node's metrics, labelled with
	// node=<id>. /metrics always serves the node's own registry.
	Registry prometheus.Registerer
}

func (c Config) normalize() (Config, error) {
	if c.DataDir == "" {
		return c, &ConfigError{Field: "DataDir", Reason: "required"}
	}
	if c.PinSourceStall <= 0 {
		c.PinSourceStall = 30 * time.Second
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:0"
	}
	if c.WebTransportAddr == "" {
		c.WebTransportAddr = "127.0.0.1:0"
	}
	if c.PublicHost == "" {
		c.PublicHost = "127.0.0.1"
	}
	if _, err := netip.ParseAddr(c.PublicHost); err != nil {
		return c, &ConfigError{Field: "PublicHost", Reason: "must be an IP literal"}
	}
	if c.CertValidity == 0 {
		c.CertValidity = 13 * 24 * time.Hour
	}
	if c.CertValidity < 0 || c.CertValidity > MaxCertValidity {
		return c, &ConfigError{Field: "CertValidity", Reason: "must be positive and at most 14 days"}
	}
	if c.CertRotateBefore == 0 {
		c.CertRotateBefore = 3 * 24 * time.Hour
		if c.CertRotateBefore >= c.CertValidity {
			c.CertRotateBefore = c.CertValidity / 4
		}
	}
	if c.CertRotateBefore < 0 || c.CertRotateBefore >= c.CertValidity-certBackdate {
		return c, &ConfigError{Field: "CertRotateBefore", Reason: "must be positive and less than CertValidity"}
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 16 << 10
	}
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = 2 << 20
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Minute
	}
	if c.MaxStreamsPerSession == 0 {
		c.MaxStreamsPerSession = 64
	}
	if c.MaxHeaderBytes < 0 || c.MaxBlockSize < 0 || c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 || c.WriteTimeout < 0 || c.MaxStreamsPerSession < 0 {
		return c, &ConfigError{Field: "limits", Reason: "must not be negative"}
	}
	var err error
	if c.WebRTC, err = c.WebRTC.normalize(); err != nil {
		return c, err
	}
	c.Payments = c.Payments.normalize()
	if c.LoadCapacity <= 0 {
		c.LoadCapacity = 256
	}
	if c.Version == "" {
		c.Version = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			c.Version = bi.Main.Version
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
