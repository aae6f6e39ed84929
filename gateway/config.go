package gateway

import (
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/netguard"
	"github.com/verity-cdn/verity/internal/ratelimit"
)

// Config configures a Gateway. Sites and Nodes are required; the zero
// value of every other field is a usable default, and each optional
// dependency (Bus, API, ScoreSink, Offers, Accounts, Charges) turns on only
// what its own comment says.
type Config struct {
	// Listen is the TCP address to bind. Default "127.0.0.1:8080".
	// Use port 0 to pick a free port; URL reports the bound address.
	Listen string
	// Listener, when set, is served instead of binding Listen: the caller
	// bound it, e.g. to know the gateway's URL before New. The gateway
	// closes it.
	Listener net.Listener
	// Domains, when set, maps custom domains attached to sites (and
	// proven) to their site: such a host serves that site's current
	// root, following its deploys and rollbacks, and is billed to it.
	// Checked before DNSLink.
	Domains DomainSource
	// HTTPS, when set, serves the same origins over TLS (and HTTP/3) on
	// a second listener, with certificates from e.g. internal/acme; the
	// plain listener then answers ACME challenges and redirects host
	// names to https. See HTTPSConfig.
	HTTPS *HTTPSConfig
	// Domain is the parent domain of site origins: site NAME answers on
	// NAME.<Domain>[:port]. Default "localhost".
	Domain string
	// DNSLink, when set, serves custom domains: a Host that is neither
	// under Domain nor an admin host (an IP literal, "localhost", Domain
	// itself or one of AdminHosts) is looked up as "_dnslink.<host>" and
	// served as a site named after the host, billed to the account of the
	// site that published the root the record names (Sites must be a
	// SiteRoots); a record naming a root no site published is not served
	// (404). Nil: no custom domains, and every other host is the admin
	// host.
	DNSLink DNSLinkResolver
	// AdminHosts are extra host names that serve the gateway's own API
	// (metrics, health, API) when DNSLink is set.
	AdminHosts []string
	// Sites maps a site name to its current root. Required. A SiteWatcher
	// (the control plane's sites bucket, StaticSites) purges a site's
	// cached HTML as soon as its root changes.
	Sites SiteSource
	// Nodes lists the storage nodes the gateway fetches from. Required. A
	// RankedNodeSource (the coordinator) ranks them for each visitor, a
	// PlacementSource (the coordinator) narrows them to a root's holders.
	Nodes NodeSource

	// API serves the paths under /v1/ on the gateway's own host (any host
	// that is not a site origin): in `verity gateway`, the control plane
	// (package control), which also serves the coordinator's node
	// endpoint. Default: none, those paths answer 404.
	API http.Handler
	// Console holds the web console's files (index.html at its root),
	// served at /console/ on the gateway's own host with a strict
	// Content-Security-Policy; the console uses only the API above. In
	// `verity gateway` and the devnet: package web's Console. Default:
	// none, /console answers 404.
	Console fs.FS
	// Bus, when set, puts the gateway on the event bus: it emits
	// cache.purged when it drops a site's cached HTML and node.reported
	// for workers' reports, and publishes its voucher key in the gateways
	// bucket. The caller owns the Bus and closes it after the gateway.
	Bus *events.Bus
	// Name identifies the gateway in the events it emits and in the
	// charges it makes. Default: the Bus's name.
	Name string
	// DataDir keeps the gateway's voucher key (payment.key). Default:
	// none, and a key generated at start (see PaymentsConfig.Key).
	DataDir string

	// Offers relays WebRTC offers to nodes (the coordinator). Default:
	// none, offers answer 404.
	Offers OfferRelay
	// Accounts tells the gateway the sites' accounts' balances (the
	// coordinator's mirror of the ledger): no voucher is issued for an
	// unknown account, a frozen one gets PaymentError, and with Charges a
	// site whose account is out of credit answers 402. Default: none,
	// vouchers name the account unchecked and no site is refused.
	Accounts AccountSource
	// Holds takes a hold on the account for each voucher issued (the
	// coordinator's *ledger.Ledger): the account's available funds
	// (balance − what unexpired vouchers hold) must cover the voucher's
	// budget, else the session gets no voucher and the worker fetches
	// through the gateway, which meters it. Default: none, vouchers are
	// issued without holds.
	Holds Holder
	// Charges is where the bytes the gateway serves on a site's HTTPS path
	// are charged to the site's account (the coordinator's ledger), every
	// MeterInterval and at Close. Default: none, nothing is metered.
	Charges Charger
	// MeterInterval is how often the bytes served on the HTTPS path are
	// charged, one ledger write per account per interval. Default 10 s.
	MeterInterval time.Duration
	// CreditLimit is how far below zero a site's account balance may go
	// before the gateway refuses the site's visitors with 402. A frozen
	// account is still served: the gateway is where its visitors go once
	// nodes refuse it. Default 1 GiB, the ledger's default overdraft;
	// negative: refuse as soon as the balance is below zero.
	CreditLimit int64

	// Client makes requests to nodes. Default: an http.Client whose
	// transport uses Dialer and has no overall timeout (NodeTimeout bounds
	// each request instead).
	Client *http.Client
	// Dialer dials nodes when Client is nil. Default net.Dialer with a 5 s
	// connect timeout that refuses private, loopback and link-local
	// addresses unless AllowPrivateAddrs (internal/netguard), on every
	// connection: a node's host name that resolved to a public address
	// when its URLs were proven cannot later lead the gateway into its
	// own network (DNS rebinding).
	Dialer *net.Dialer
	// AllowPrivateAddrs lets the default Dialer reach nodes on private,
	// loopback and link-local addresses (a devnet, a private network).
	AllowPrivateAddrs bool

	// Assets holds the worker's files: verity.js, verity-sw.js,
	// dist/verity.wasm and dist/wasm_exec.js. Default: the files embedded in
	// package serviceworker. Missing wasm files are logged and answered 404.
	Assets fs.FS

	// MaxHTMLCacheBytes bounds the in-memory HTML cache. Default 64 MiB;
	// negative disables the cache.
	MaxHTMLCacheBytes int64
	// MaxHTMLBytes is the largest HTML document the gateway buffers (and
	// caches); larger HTML is streamed like any other file. Default 8 MiB.
	MaxHTMLBytes int64
	// MaxReportBytes bounds a /.verity/v1/report body. Default 4 KiB.
	MaxReportBytes int64
	// MaxScoresBytes bounds a /.verity/v1/scores body. Default 32 KiB.
	MaxScoresBytes int64
	// ScoresRate and ScoresBurst rate-limit score reports per client
	// address (a token bucket): reports per second and the burst allowed.
	// Defaults 0.2/s and 5; beyond them the gateway answers 429.
	ScoresRate  float64
	ScoresBurst int
	// TrafficRate and TrafficBurst rate-limit workers' traffic reports
	// (POST /.verity/v1/traffic) per client address, as ScoresRate and
	// ScoresBurst do scores. Defaults 0.2/s and 5.
	TrafficRate  float64
	TrafficBurst int
	// TrafficInterval is how often the requests counted per site (the
	// gateway's own, and those workers report) go on the bus as
	// site.traffic, with Bus. Default 10 s.
	TrafficInterval time.Duration
	// ScoreSink receives the scores workers report (the coordinator's
	// router). Default: none, scores are checked and dropped.
	ScoreSink ScoreSink

	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 120 s.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 30 s.
	ReadTimeout time.Duration
	// WriteStallTimeout closes a connection whose client has not taken any
	// response bytes for this long (a per-write deadline, so large bodies
	// to slow-but-reading clients are fine). Default 30 s.
	WriteStallTimeout time.Duration
	// MaxConns bounds concurrent client connections. Default 4096.
	MaxConns int
	// MaxConnsPerClient bounds the connections one client (one address
	// prefix, see ClientPrefixes) holds at once; a connection over it is
	// closed as soon as it is accepted, so one client cannot take the
	// MaxConns every visitor shares. Trusted proxies are exempt. Default
	// 256 (a browser opens 6 per origin; the rest is room for visitors
	// behind one NAT); negative: no per-client cap.
	MaxConnsPerClient int
	// RequestRate and RequestBurst rate-limit requests per client (a token
	// bucket per address prefix): requests per second and the burst
	// allowed. Beyond them the gateway answers 429 with Retry-After.
	// Defaults 100/s and 500 (a first visit costs a few dozen requests);
	// a negative RequestRate turns the limit off.
	RequestRate  float64
	RequestBurst int
	// ClientPrefixes groups client addresses for every per-client limit
	// (connections, requests, WebRTC offers, scores, vouchers): an IPv4
	// address and an IPv6 /64 by default, since one IPv6 host commonly
	// holds a whole /64.
	ClientPrefixes ratelimit.Prefixes
	// TrustedProxies are the reverse proxies in front of the gateway
	// (addresses or prefixes): for a request from one of them, the client
	// is the nearest address of X-Forwarded-For that is not a trusted
	// proxy, for limits, routing and logs; their connections are not
	// capped per client. Default none: X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// MaxHeaderBytes bounds request headers. Default 64 KiB.
	MaxHeaderBytes int
	// NodeTimeout bounds one node request until the entity is resolved, and
	// the time its body keeps the gateway waiting, in all, for each 64 KiB
	// (a node trickling bytes is cut off as one sending nothing). Default
	// 15 s.
	NodeTimeout time.Duration
	// MaxNodeAttempts is how many nodes one request tries. Default 3.
	MaxNodeAttempts int
	// NodeBackoff is how long a failed node is tried last. Default 30 s.
	NodeBackoff time.Duration
	// RootGrace is how long a previous root of a site stays servable by
	// the CAR fallback after the site moved on. Default 10 min.
	RootGrace time.Duration
	// SessionTTL is the ttl (seconds) in session responses. Default 30 s.
	SessionTTL time.Duration

	// WebRTCOfferRate and WebRTCOfferBurst rate-limit WebRTC offers per
	// client address (a token bucket): offers per second and the burst
	// allowed. Defaults 2/s and 10; beyond them the gateway answers 429.
	WebRTCOfferRate  float64
	WebRTCOfferBurst int

	// Payments configures the vouchers issued with sessions.
	Payments PaymentsConfig

	// Logger receives the gateway's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Registerer receives the gateway's metrics. Default: a registry of
	// the gateway's own, served at /metrics.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics. Default: Registerer when it is also a
	// Gatherer (as *prometheus.Registry is), else nothing is served.
	Gatherer prometheus.Gatherer
}

const (
	defaultListen            = "127.0.0.1:8080"
	defaultDomain            = "localhost"
	defaultMaxHTMLCacheBytes = 64 << 20
	defaultMaxHTMLBytes      = 8 << 20
	defaultMaxReportBytes    = 4 << 10
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteStallTimeout = 30 * time.Second
	defaultMaxConns          = 4096
	defaultMaxConnsPerClient = 256
	defaultRequestRate       = 100
	defaultRequestBurst      = 500
	defaultMaxHeaderBytes    = 64 << 10
	defaultNodeTimeout       = 15 * time.Second
	defaultMaxNodeAttempts   = 3
	defaultNodeBackoff       = 30 * time.Second
	defaultRootGrace         = 10 * time.Minute
	defaultSessionTTL        = 30 * time.Second
)

// normalize fills defaults and checks required fields.
func (c Config) normalize() (Config, error) {
	if err := c.Payments.check(); err != nil {
		return c, err
	}
	c.Payments = c.Payments.normalize()
	if c.Sites == nil {
		return c, configError("Sites is required")
	}
	if c.Nodes == nil {
		return c, configError("Nodes is required")
	}
	if _, ok := c.Sites.(SiteRoots); c.DNSLink != nil && !ok {
		return c, configError("DNSLink needs Sites to be a SiteRoots: a custom domain is billed to the site that published its root")
	}
	if c.Name == "" && c.Bus != nil {
		c.Name = c.Bus.Name()
	}
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	c.Domain = strings.Trim(strings.ToLower(c.Domain), ".")
	if c.Domain == "" {
		c.Domain = defaultDomain
	}
	if c.HTTPS != nil {
		https := *c.HTTPS
		if err := https.normalize(); err != nil {
			return c, err
		}
		c.HTTPS = &https
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{Timeout: 5 * time.Second, Control: netguard.Guard{AllowPrivate: c.AllowPrivateAddrs}.Control}
	}
	if c.Client == nil {
		tr := &http.Transport{
			DialContext:           c.Dialer.DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0,
			DisableCompression:    true,
		}
		c.Client = &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if c.Assets == nil {
		c.Assets = defaultAssets()
	}
	if c.MaxHTMLCacheBytes == 0 {
		c.MaxHTMLCacheBytes = defaultMaxHTMLCacheBytes
	}
	if c.MaxHTMLBytes <= 0 {
		c.MaxHTMLBytes = defaultMaxHTMLBytes
	}
	if c.MaxReportBytes <= 0 {
		c.MaxReportBytes = defaultMaxReportBytes
	}
	if c.MaxScoresBytes <= 0 {
		c.MaxScoresBytes = 32 << 10
	}
	if c.ScoresRate <= 0 {
		c.ScoresRate = 0.2
	}
	if c.ScoresBurst <= 0 {
		c.ScoresBurst = 5
	}
	if c.TrafficRate <= 0 {
		c.TrafficRate = 0.2
	}
	if c.TrafficBurst <= 0 {
		c.TrafficBurst = 5
	}
	if c.TrafficInterval <= 0 {
		c.TrafficInterval = 10 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteStallTimeout <= 0 {
		c.WriteStallTimeout = defaultWriteStallTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = defaultMaxConns
	}
	switch {
	case c.MaxConnsPerClient == 0:
		c.MaxConnsPerClient = defaultMaxConnsPerClient
	case c.MaxConnsPerClient < 0:
		c.MaxConnsPerClient = 0
	}
	switch {
	case c.RequestRate == 0:
		c.RequestRate = defaultRequestRate
	case c.RequestRate < 0:
		c.RequestRate = 0
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = defaultRequestBurst
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = defaultNodeTimeout
	}
	if c.MaxNodeAttempts <= 0 {
		c.MaxNodeAttempts = defaultMaxNodeAttempts
	}
	if c.NodeBackoff <= 0 {
		c.NodeBackoff = defaultNodeBackoff
	}
	if c.RootGrace <= 0 {
		c.RootGrace = defaultRootGrace
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = defaultSessionTTL
	}
	if c.MeterInterval <= 0 {
		c.MeterInterval = 10 * time.Second
	}
	switch {
	case c.CreditLimit == 0:
		c.CreditLimit = 1 << 30
	case c.CreditLimit < 0:
		c.CreditLimit = 0
	}
	if c.WebRTCOfferRate <= 0 {
		c.WebRTCOfferRate = 2
	}
	if c.WebRTCOfferBurst <= 0 {
		c.WebRTCOfferBurst = 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Registerer == nil {
		reg := prometheus.NewRegistry()
		c.Registerer = reg
		if c.Gatherer == nil {
			c.Gatherer = reg
		}
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		}
	}
	return c, nil
}
