package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// Config configures a Coordinator. Bus is required; every other field has a
// working zero value.
type Config struct {
	// Bus holds the nodes KV bucket and receives node.joined / node.lost.
	Bus *events.Bus

	// ID names this coordinator in challenges, state and events. Default: a
	// random "c" + 12 hex digits.
	ID string

	// HeartbeatInterval is how often nodes report. Default 10 s.
	HeartbeatInterval time.Duration

	// MissedHeartbeats after which a node is lost. Default 3.
	MissedHeartbeats int

	// ChallengeTTL is how long a node has to answer its challenge. Default 30 s.
	ChallengeTTL time.Duration

	// MaxMessageBytes bounds one message from a node. Default 64 KiB.
	MaxMessageBytes int64

	// Router ranks live nodes for a client in NodesFor. Default: a Router
	// with an empty ASN table (ranking by region, load and RTT only).
	Router *Router

	// NoPlacement turns the placement consumer off: this coordinator does
	// not take site.deployed events (others sharing the bus do). Pin
	// orders for nodes connected here are sent either way.
	NoPlacement bool

	// PinAttempts bounds the pin orders sent to one node for one root:
	// after a failure the order is sent again after PinRetryMin, doubling
	// up to PinRetryMax; after PinAttempts failures the root is placed on
	// another node. Defaults 5, 10 s, 5 min.
	PinAttempts int
	PinRetryMin time.Duration
	PinRetryMax time.Duration

	// RebalanceInterval paces the moves of existing holdings onto the
	// nodes that hold the fewest roots (a node that joins): at most one
	// move in flight, one started per interval. Default 1 min; negative:
	// never (new roots still go to the emptiest nodes). Runs on
	// coordinators with the placement role.
	RebalanceInterval time.Duration

	// RepairInterval paces a pass over every placement that places again
	// each root short of live holders (Rereplicate), as node.joined and
	// node.lost do: a root whose every holder failed it (a failed audit,
	// every pin attempt) is otherwise left short until a node joins or
	// leaves, or the content is deployed or stored again. Nodes that
	// failed the root are ordered again, afresh, only when no other live
	// node can take it, with a check of what they hold, and only once
	// they failed at least RepairRetryAfter ago (a node that fails every
	// time is ordered about once per RepairRetryAfter, not every pass).
	// One coordinator of a cluster at a time (the lease RepairLease).
	// Default 10 min; negative: never. Runs on coordinators with the
	// placement role. RepairRetryAfter defaults to 1 h; negative: at once.
	RepairInterval   time.Duration
	RepairRetryAfter time.Duration

	// CollectInterval paces the collector of unreferenced content
	// (collect.go): about once per interval, one coordinator of a
	// cluster at a time (the lease CollectLease in the leases bucket)
	// unplaces the roots that no ReferenceSource has referenced for
	// CollectGrace. Runs on coordinators with the placement role, and
	// collects nothing until a source is added (AddReferenceSource).
	// Default 10 min; negative: never (Collect can still be called).
	CollectInterval time.Duration
	// CollectGrace is how long a root must have been found unreferenced
	// before it is collected: readers that hold an old bucket root or an
	// object's CID have that long. Default 1 h.
	CollectGrace time.Duration

	// Registerer, when set, receives the coordinator's metrics (the
	// collector's). Default nil: not registered.
	Registerer prometheus.Registerer

	// OriginPatterns are passed to the WebSocket upgrade; nodes send no
	// Origin header, so the default (none) refuses browsers.
	OriginPatterns []string

	// Ledger configures the coordinator's ledger (internal/ledger); its
	// Bus, Keys (the gateway keys in BucketGateways), Logger and Now are
	// filled in from this Config.
	Ledger ledger.Config

	// AllowPrivateAddrs accepts nodes whose URLs are on private,
	// loopback or link-local addresses (a devnet, tests, a private
	// network). Default false: such a record is refused, so that no
	// node can point the network's clients at internal services.
	AllowPrivateAddrs bool
	// URLProver checks a joining node's URLs before it is listed.
	// Default: a *URLProof with AllowPrivateAddrs.
	URLProver URLProver

	// Storage audits (see Audit): a pinned report counts once AuditWalks
	// random blocks of the root, fetched from the node, verify; each
	// holding of a node connected here is audited again about every
	// AuditInterval (jittered), AuditConcurrency audits at a time, each
	// within AuditTimeout. A node that fails is ranked last for
	// AuditPenalty. Defaults 3 walks, 1 h, 4, 1 min, 24 h.
	AuditWalks       int
	AuditInterval    time.Duration
	AuditConcurrency int
	AuditTimeout     time.Duration
	AuditPenalty     time.Duration

	// RequestKey, a gateway key the nodes trust (the payment key of the
	// gateway this coordinator runs with), signs the audits' requests
	// (nodeproto.SignGatewayRequest) and the grants that let a node
	// fetch a root it is ordered to pin, or a block it repairs, from
	// other nodes (nodeproto.SignGrant). A node that requires payment
	// serves content on HTTP only to such requests. Default nil: audits
	// go unsigned and orders carry no grant.
	RequestKey ed25519.PrivateKey

	// audit replaces Audit in tests (export_test.go).
	audit func(ctx context.Context, base, root string) error

	// Logger default slog.Default(); Now default time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c Config) normalize() (Config, error) {
	if c.Bus == nil {
		return c, errors.New("coordinator: Config.Bus is required")
	}
	if c.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ID = "c" + hex.EncodeToString(b[:])
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.MissedHeartbeats <= 0 {
		c.MissedHeartbeats = 3
	}
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = 30 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.PinAttempts <= 0 {
		c.PinAttempts = 5
	}
	if c.PinRetryMin <= 0 {
		c.PinRetryMin = 10 * time.Second
	}
	if c.PinRetryMax < c.PinRetryMin {
		c.PinRetryMax = max(c.PinRetryMin, 5*time.Minute)
	}
	if c.RebalanceInterval == 0 {
		c.RebalanceInterval = time.Minute
	}
	if c.CollectInterval == 0 {
		c.CollectInterval = defaultCollectInterval
	}
	if c.RepairInterval == 0 {
		c.RepairInterval = 10 * time.Minute
	}
	if c.RepairRetryAfter == 0 {
		c.RepairRetryAfter = time.Hour
	}
	if c.CollectGrace <= 0 {
		c.CollectGrace = time.Hour
	}
	if c.AuditWalks <= 0 {
		c.AuditWalks = 3
	}
	if c.AuditInterval <= 0 {
		c.AuditInterval = time.Hour
	}
	if c.AuditConcurrency <= 0 {
		c.AuditConcurrency = 4
	}
	if c.AuditTimeout <= 0 {
		c.AuditTimeout = time.Minute
	}
	if c.AuditPenalty <= 0 {
		c.AuditPenalty = 24 * time.Hour
	}
	if c.URLProver == nil {
		c.URLProver = &URLProof{AllowPrivate: c.AllowPrivateAddrs}
	}
	if c.Router == nil {
		c.Router = NewRouter(RouterConfig{})
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

const defaultCollectInterval = 10 * time.Minute

// deadline is how long a node may stay silent before it is lost.
func (c Config) deadline() time.Duration {
	return c.HeartbeatInterval * time.Duration(c.MissedHeartbeats)
}
