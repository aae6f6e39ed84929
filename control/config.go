package control

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// Coordinator is what the control plane asks of the coordinator running
// next to it; *coordinator.Coordinator implements it.
type Coordinator interface {
	// ServeConnect serves nodes joining at nodeproto.ConnectPath.
	ServeConnect(w http.ResponseWriter, r *http.Request)
	// AuthenticateNode checks a request signed with a registered node's
	// key (nodeproto.SignContentRequest) and returns the node id.
	AuthenticateNode(r *http.Request) (string, error)
	// LiveNodes lists the nodes joined now: the publisher counts the
	// live holders of a deploy.
	LiveNodes(ctx context.Context) ([]coordinator.NodeState, error)
	// NodeStates lists every node of the registry, live or lost, and
	// Placements every root's holders: `verity nodes list`.
	NodeStates(ctx context.Context) ([]coordinator.NodeState, error)
	Placements() []coordinator.Placement
	// Release drops an expired preview's label from a root's placement,
	// and the placement with it (its holders told to unpin it) when no
	// label is left; it reports whether it did.
	Release(ctx context.Context, root, label string) (bool, error)
	// Keep clears the collector's mark on a root a store just recorded
	// a reference to (under label, which it adds to the placement's), and
	// reports whether the root is still placed.
	Keep(ctx context.Context, root, label string) (bool, error)
	// Ledger is the accounts ledger the coordinator settles nodes on;
	// the accounts API reads and writes it.
	Ledger() *ledger.Ledger
	// CreateOperator, Operators and RevokeOperator manage the node
	// operators' credentials (the operators API).
	CreateOperator(ctx context.Context, name string) (string, error)
	Operators(ctx context.Context) ([]coordinator.OperatorInfo, error)
	RevokeOperator(ctx context.Context, name string) error
	// VerifyOperator returns the operator whose credential tok is: an
	// operator signs in to the console with it.
	VerifyOperator(tok string) (string, error)
}

var _ Coordinator = (*coordinator.Coordinator)(nil)

// Config configures a Control. Bus, Coordinator, DataDir and PublicURL are
// required; every other field has a usable zero value.
type Config struct {
	// Bus holds the shared state (the sites, tokens, deploys and
	// placements buckets) and carries the events the control plane emits
	// and follows. The caller owns it and closes it after the Control.
	Bus *events.Bus
	// Coordinator is the coordinator run on Bus: its node endpoint is
	// served at nodeproto.ConnectPath, its registry authenticates
	// nodes and counts live holders, its ledger backs the accounts API.
	// The caller owns it and closes it after the Control.
	Coordinator Coordinator
	// DataDir holds deploys: uploads are staged under DataDir/uploads,
	// verified CARs kept under DataDir/content for nodes to fetch, and a
	// generated admin token in DataDir/admin-token.
	DataDir string
	// PublicURL is the base URL nodes reach this gateway at: site.deployed
	// events send nodes to PublicURL/v1/content/<root>.car.
	PublicURL string

	// Name identifies this gateway in the events it emits, and its
	// consumer of content.collected. Default: the Bus's name.
	Name string
	// Registerer, when set, receives the control plane's metrics (the
	// CARs of collected content removed: collected.go).
	Registerer prometheus.Registerer
	// AdminToken authorizes the whole API (creating sites, listing them,
	// accounts, the event feed, and anything a site's own deploy token may
	// do). Default: the token in DataDir/admin-token, generated there (mode
	// 0600) on first start.
	AdminToken string
	// MaxDeployBytes bounds a deploy's CAR; larger uploads are refused
	// with 413 and nothing is kept. Default 1 GiB.
	MaxDeployBytes int64
	// MaxContentBytes bounds the CAR of content that is not a deploy
	// (StoreCAR: an S3 object) and of a CAR fetched from the nodes that
	// hold it when this gateway has none (OpenCAR: bounded by the larger
	// of this and MaxDeployBytes, as it may be either). A gateway with
	// the S3 API sets it from the API's object limits
	// (s3api.MaxCARBytes). Default: 5 TiB and 1/64 more, S3's largest
	// object and its CAR's overhead.
	MaxContentBytes int64
	// DeployTimeout bounds reading one deploy upload; it replaces the
	// server's read timeout for deploys. Default 30 min.
	DeployTimeout time.Duration
	// Replicas is how many nodes must hold a deployed root before its site
	// is published. Default 2.
	Replicas int
	// PreviewTTL is how long a preview deploy is served when the deploy
	// names no ttl; MaxPreviewTTL bounds what it may name. Defaults 7
	// days and 90 days.
	PreviewTTL, MaxPreviewTTL time.Duration
	// PreviewSweep is how often expired previews are looked for (and
	// unplaced, their CARs deleted). Default 1 min.
	PreviewSweep time.Duration
	// Faucet turns on the development faucet: POST
	// /v1/accounts/{name}/topup (admin) credits an account for free.
	// Default off: top-ups are refused with 403.
	Faucet bool
	// WriteStallTimeout ends an event feed whose client has taken no
	// bytes for this long. Default 30 s.
	WriteStallTimeout time.Duration
	// HolderStall: a node that sends less than 64 KiB in any such
	// interval of a CAR this gateway fetches from it (OpenCAR), its
	// response head counted, is abandoned for the next holder. Default
	// 30 s.
	HolderStall time.Duration
	// RequestKey, a gateway key nodes trust (the gateway's payment key),
	// signs the requests for content on holders
	// (nodeproto.SignGatewayRequest): a node that requires payment
	// answers an unsigned one with 402. Default nil: unsigned.
	RequestKey ed25519.PrivateKey

	// SiteDomain is the parent domain of site origins (the gateway's
	// --domain): a custom domain may prove ownership with a CNAME to
	// <site>.<SiteDomain>. Default "localhost".
	SiteDomain string
	// DNSServer ("host:port") answers the ownership checks of custom
	// domains. Default: the system resolver.
	DNSServer string

	// AllowPrivateAddrs lets webhook endpoints be on loopback, private,
	// link-local and CGNAT addresses (a devnet, tests, a private network).
	// Default: public addresses only, checked when an endpoint is added
	// and on every connection (internal/netguard).
	AllowPrivateAddrs bool
	// WebhookTimeout bounds one webhook delivery request. Default 10 s.
	WebhookTimeout time.Duration
	// WebhookRetryMin and WebhookRetryMax bound the delay before another
	// attempt of a failed delivery: RetryMin, doubling, at most RetryMax.
	// WebhookAttempts bounds the attempts of one delivery. Defaults 10 s,
	// 1 h and 12 (about 3.5 h in all).
	WebhookRetryMin, WebhookRetryMax time.Duration
	WebhookAttempts                  int
	// WebhookLogRetention is how long delivery attempts are logged and
	// delivered events kept for a redelivery. Default 7 days.
	WebhookLogRetention time.Duration

	// SessionTTL is how long a console session lasts after signing in,
	// at most events.SessionBucketTTL. Default 12 h.
	SessionTTL time.Duration

	// Logger receives the control plane's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

const (
	defaultMaxDeployBytes    = 1 << 30
	defaultMaxContentBytes   = 5<<40 + 5<<40/64
	defaultDeployTimeout     = 30 * time.Minute
	defaultReplicas          = 2
	defaultPreviewTTL        = 7 * 24 * time.Hour
	defaultMaxPreviewTTL     = 90 * 24 * time.Hour
	defaultPreviewSweep      = time.Minute
	defaultWriteStallTimeout = 30 * time.Second
	defaultHolderStall       = 30 * time.Second
	defaultWebhookTimeout    = 10 * time.Second
	defaultWebhookRetryMin   = 10 * time.Second
	defaultWebhookRetryMax   = time.Hour
	defaultWebhookAttempts   = 12
	defaultWebhookRetention  = 7 * 24 * time.Hour
	defaultSessionTTL        = 12 * time.Hour
)

// normalize fills defaults and checks required fields.
func (c Config) normalize() (Config, error) {
	switch {
	case c.Bus == nil:
		return c, configError("Bus is required")
	case c.Coordinator == nil:
		return c, configError("Coordinator is required")
	case c.DataDir == "":
		return c, configError("DataDir is required")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PublicURL == "" {
		return c, configError("PublicURL is required")
	}
	if c.Name == "" {
		c.Name = c.Bus.Name()
	}
	if c.MaxDeployBytes <= 0 {
		c.MaxDeployBytes = defaultMaxDeployBytes
	}
	if c.MaxContentBytes <= 0 {
		c.MaxContentBytes = defaultMaxContentBytes
	}
	if c.PreviewTTL <= 0 {
		c.PreviewTTL = defaultPreviewTTL
	}
	if c.MaxPreviewTTL <= 0 {
		c.MaxPreviewTTL = defaultMaxPreviewTTL
	}
	if c.PreviewSweep <= 0 {
		c.PreviewSweep = defaultPreviewSweep
	}
	if c.DeployTimeout <= 0 {
		c.DeployTimeout = defaultDeployTimeout
	}
	if c.Replicas <= 0 {
		c.Replicas = defaultReplicas
	}
	if c.WriteStallTimeout <= 0 {
		c.WriteStallTimeout = defaultWriteStallTimeout
	}
	if c.HolderStall <= 0 {
		c.HolderStall = defaultHolderStall
	}
	if c.WebhookTimeout <= 0 {
		c.WebhookTimeout = defaultWebhookTimeout
	}
	if c.WebhookRetryMin <= 0 {
		c.WebhookRetryMin = defaultWebhookRetryMin
	}
	if c.WebhookRetryMax <= 0 {
		c.WebhookRetryMax = defaultWebhookRetryMax
	}
	c.WebhookRetryMax = max(c.WebhookRetryMax, c.WebhookRetryMin)
	if c.WebhookAttempts <= 0 {
		c.WebhookAttempts = defaultWebhookAttempts
	}
	if c.WebhookLogRetention <= 0 {
		c.WebhookLogRetention = defaultWebhookRetention
	}
	c.SiteDomain = strings.Trim(strings.ToLower(c.SiteDomain), ".")
	if c.SiteDomain == "" {
		c.SiteDomain = "localhost"
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = defaultSessionTTL
	}
	c.SessionTTL = min(c.SessionTTL, events.SessionBucketTTL)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
