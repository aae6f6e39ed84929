package control

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/netguard"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/ratelimit"
	"github.com/verity-cdn/verity/internal/secret"
)

// Control is the control plane of a gateway: the site, deploy, token,
// accounts and event-feed API on the gateway's own host, the sites bucket
// the gateway's site origins read (Sites), and the publisher. It is an
// http.Handler for the paths under /v1/.
type Control struct {
	cfg     Config
	log     *slog.Logger
	coord   Coordinator
	ledger  *ledger.Ledger
	sites   *KVSites
	domains *Domains
	mux     *http.ServeMux

	tokens jetstream.KeyValue
	// tokensLeader reads tokens from its stream's leader (checkSiteToken).
	tokensLeader *events.LeaderKV
	deploys      jetstream.KeyValue
	places       jetstream.KeyValue
	previews     jetstream.KeyValue
	wg           sync.WaitGroup // the preview sweeper
	adminHash    [sha256.Size]byte
	admin        string               // the admin token: the webhook secrets' sealing key is derived from it
	adminPath    string               // where the admin token is kept, or "" when configured
	sub          *events.Subscription // the publisher
	// collected removes the CARs of collected content (collected.go).
	collected *events.Subscription
	holds     carHolds
	cmetrics  *contentMetrics

	hooks      jetstream.KeyValue   // webhook endpoints
	hookLog    jetstream.KeyValue   // their delivery attempts
	hookSub    *events.Subscription // the webhook fan-out
	hookClient *http.Client         // deliveries, through netguard
	sealer     *secret.Sealer       // the endpoints' secrets

	buckets  bucketsRef         // the S3 API, for sites that follow a bucket (SetBuckets)
	s3Keys   jetstream.KeyValue // S3 access keys
	s3Sealer *secret.Sealer     // their secrets
	// fetchClient fetches content from nodes (OpenCAR), through netguard.
	fetchClient   *http.Client
	sessions      jetstream.KeyValue           // console sessions
	sessionSealer *secret.Sealer               // the credentials they hold
	signInLimit   *ratelimit.Limiter[[32]byte] // sign-ins per credential

	historyHeld  *ratelimit.Counter[[32]byte] // history answers in flight per credential
	historySlots chan struct{}                // history answers in flight

	ctx       context.Context // canceled by Close; parent of the publisher
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// New opens the control plane's buckets, loads (or generates) the admin
// token, prepares DataDir and starts the publisher. ctx bounds the setup
// only. Serve it as an http.Handler; release it with Close.
func New(ctx context.Context, cfg Config) (_ *Control, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Control{cfg: cfg, log: cfg.Logger, coord: cfg.Coordinator, ledger: cfg.Coordinator.Ledger()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.sites, err = NewKVSites(ctx, KVSitesConfig{Bus: cfg.Bus, Source: cfg.Name, Logger: cfg.Logger, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("control: sites: %w", err)
	}
	c.domains, err = newDomains(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("control: domains: %w", err)
	}
	if err := c.startDeploys(); err != nil {
		return nil, fmt.Errorf("control: deploys: %w", err)
	}
	if err := c.startWebhooks(ctx, secret.NewSealer(c.admin, "webhook secrets")); err != nil {
		return nil, fmt.Errorf("control: webhooks: %w", err)
	}
	if c.s3Keys, err = cfg.Bus.KV(events.BucketS3Keys); err != nil {
		return nil, fmt.Errorf("control: S3 keys: %w", err)
	}
	c.s3Sealer = secret.NewSealer(c.admin, "s3 access keys")
	guard := netguard.Guard{AllowPrivate: cfg.AllowPrivateAddrs}
	c.fetchClient = &http.Client{Transport: &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second, Control: guard.Control}).DialContext,
		IdleConnTimeout: 30 * time.Second,
	}}
	if c.sessions, err = cfg.Bus.KV(events.BucketSessions); err != nil {
		return nil, fmt.Errorf("control: sessions: %w", err)
	}
	c.sessionSealer = secret.NewSealer(c.admin, "console sessions")
	c.signInLimit = ratelimit.New[[32]byte](ratelimit.Config{Rate: signInRate, Burst: signInBurst, Now: cfg.Now})
	c.historyHeld = ratelimit.NewCounter[[32]byte](historyPerCredential)
	c.historySlots = make(chan struct{}, maxHistoryInFlight)
	c.mux = c.routes()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.sweepPreviews(c.ctx)
	}()
	return c, nil
}

// routes is the API: every path under /v1/ on the gateway's own host.
func (c *Control) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nodeproto.ConnectPath, c.coord.ServeConnect) // a WebSocket upgrade
	mux.HandleFunc("POST "+authPath, c.apiSignIn)
	mux.HandleFunc("DELETE "+authPath, c.apiSignOut)
	mux.HandleFunc("GET "+whoamiPath, c.apiWhoami)
	mux.HandleFunc("POST /v1/sites", c.apiCreateSite)
	mux.HandleFunc("GET /v1/sites", c.apiListSites)
	mux.HandleFunc("GET /v1/sites/{name}", c.apiGetSite)
	mux.HandleFunc("POST /v1/sites/{name}/deploy", c.apiDeploy)
	mux.HandleFunc("POST /v1/sites/{name}/rollback", c.apiRollback)
	mux.HandleFunc("POST /v1/sites/{name}/promote", c.apiPromote)
	mux.HandleFunc("POST /v1/sites/{name}/bucket", c.apiFollowBucket)
	mux.HandleFunc("GET /v1/sites/{name}/previews/{root}", c.apiGetPreview)
	mux.HandleFunc("GET /v1/sites/{name}/domains", c.apiListDomains)
	mux.HandleFunc("POST /v1/sites/{name}/domains", c.apiAttachDomain)
	mux.HandleFunc("POST /v1/sites/{name}/domains/{domain}/verify", c.apiVerifyDomain)
	mux.HandleFunc("DELETE /v1/sites/{name}/domains/{domain}", c.apiRemoveDomain)
	mux.HandleFunc("GET /v1/sites/{name}/webhooks", c.apiListWebhooks)
	mux.HandleFunc("POST /v1/sites/{name}/webhooks", c.apiAddWebhook)
	mux.HandleFunc("DELETE /v1/sites/{name}/webhooks/{id}", c.apiRemoveWebhook)
	mux.HandleFunc("GET /v1/sites/{name}/webhooks/{id}/log", c.apiWebhookLog)
	mux.HandleFunc("POST /v1/sites/{name}/webhooks/{id}/redeliver", c.apiRedeliverWebhook)
	mux.HandleFunc("POST /v1/keys", c.apiCreateS3Key)
	mux.HandleFunc("GET /v1/keys", c.apiListS3Keys)
	mux.HandleFunc("DELETE /v1/keys/{id}", c.apiRevokeS3Key)
	mux.HandleFunc("GET "+ContentPrefix+"{file}", c.apiContent)
	mux.HandleFunc("GET "+EventsPath, c.apiEvents)
	mux.HandleFunc("POST /v1/accounts", c.apiCreateAccount)
	mux.HandleFunc("GET /v1/accounts", c.apiListAccounts)
	mux.HandleFunc("GET /v1/accounts/{name}", c.apiGetAccount)
	mux.HandleFunc("POST /v1/accounts/{name}/topup", c.apiTopUp)
	mux.HandleFunc("GET /v1/accounts/{name}/statement", c.apiStatement)
	mux.HandleFunc("GET /v1/accounts/{name}/dashboard", c.apiDashboard)
	mux.HandleFunc("GET /v1/accounts/{name}/history", c.apiAccountHistory)
	mux.HandleFunc("GET /v1/nodes/{id}/history", c.apiNodeHistory)
	mux.HandleFunc("GET /v1/events/history", c.apiEventsHistory)
	mux.HandleFunc("GET /v1/nodes/{id}/earnings", c.apiEarnings)
	mux.HandleFunc("POST /v1/operators", c.apiCreateOperator)
	mux.HandleFunc("GET /v1/operators", c.apiListOperators)
	mux.HandleFunc("GET /v1/nodes", c.apiListNodes)
	mux.HandleFunc("GET /v1/nodes/{id}", c.apiGetNode)
	mux.HandleFunc("GET /v1/placements", c.apiListPlacements)
	mux.HandleFunc("DELETE /v1/operators/{name}", c.apiRevokeOperator)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, fmt.Errorf("%w: %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	return mux
}

// ServeHTTP serves the API. A request without an Authorization header
// may be authenticated by a console session's cookie (withSession).
func (c *Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, err := c.withSession(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// Sites is the sites bucket: the gateway's SiteSource, and where sites
// are published and rolled back.
func (c *Control) Sites() *KVSites { return c.sites }

// AdminTokenPath is the file holding the generated admin token, or "" when
// Config.AdminToken was set.
func (c *Control) AdminTokenPath() string { return c.adminPath }

// Close stops the publisher and the sites watch. It is idempotent. The Bus
// and the Coordinator stay open: the caller closes them after.
func (c *Control) Close() error {
	c.closeOnce.Do(func() {
		if c.sub != nil {
			c.sub.Stop()
		}
		if c.collected != nil {
			c.collected.Stop()
		}
		if c.hookSub != nil {
			c.hookSub.Stop()
		}
		if c.sites != nil {
			_ = c.sites.Close()
		}
		if c.domains != nil {
			c.domains.close()
		}
		c.cancel()
		c.wg.Wait()
		if c.hookClient != nil {
			c.hookClient.CloseIdleConnections()
		}
		if c.fetchClient != nil {
			c.fetchClient.CloseIdleConnections()
		}
	})
	return nil
}
