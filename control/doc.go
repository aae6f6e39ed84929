// Package control is a gateway's control plane: the API on the gateway's
// own host through which sites are created, deployed and rolled back,
// accounts funded and read, and the network watched, and the state behind
// it on the event bus. The site edge (package gateway) serves visitors; it
// reads sites from this package's KVSites through its SiteSource interface
// and hands every path under /v1/ on its own host to a Control, which is an
// http.Handler. Neither needs the other to be on the same process: every
// gateway watches the same buckets.
//
// What it holds:
//
//   - sites (sites_kv.go): the sites KV bucket, name → current root,
//     version, history (MaxSiteHistory versions) and account (an
//     api.SiteRecord). KVSites mirrors it in memory through a watch (every
//     gateway sees every change, wherever written) and writes with
//     compare-and-set: Publish and Rollback emit site.published and
//     site.rolled_back. It implements gateway.SiteSource,
//     gateway.SiteWatcher and gateway.SiteRoots (the site that published a
//     root first pays for the custom domains whose DNSLink names it).
//
//   - deploys (deploy.go): a deploy stages the upload under
//     DataDir/uploads, verifies the whole CAR (internal/carcheck), keeps it
//     as DataDir/content/<root>.car, records it in the deploys bucket as
//     placing and emits site.deployed, whose CAR URL is
//     Config.PublicURL + ContentPrefix + "<root>.car"; a refused upload
//     leaves nothing behind. Nodes fetch the CAR there with a request
//     signed by their node key. The publisher consumer (durable
//     PublisherDurable, shared by every gateway) publishes the site once
//     Config.Replicas live nodes hold the root (the coordinator's
//     placements).
//
//   - tokens (tokens.go): one random 256-bit deploy token per site, kept as
//     SHA-256(salt ‖ token) with a per-site salt in the tokens bucket and
//     compared in constant time; the admin token is Config.AdminToken or
//     generated into DataDir/admin-token.
//
//   - accounts (accounts.go, handler_accounts.go): the coordinator's
//     ledger (internal/ledger) read and written for the admin. Every site
//     belongs to an account, chosen when it is created or deployed
//     (DeployFor); one created without names DefaultAccount, created
//     (empty) the first time it is needed. Metering the bytes a gateway serves is the site edge's
//     (package gateway); the ledger it charges is this one.
//
//   - S3 access keys (s3keys.go): an account's keys in the s3_keys bucket,
//     each secret sealed (internal/secret.Sealer, under a key derived from
//     the admin token) since a SigV4 verifier needs the secret itself;
//     S3AccessKey is package s3api's KeySource. StoreCAR, Holders and
//     OpenCAR (objects.go) are its ContentStore: the deploy path's
//     staging, verification, content store and placement for content
//     that is not a site's deploy.
//
//   - the event feed (handler_events.go): the bus's events as Server-Sent
//     Events, without NATS credentials.
//
//   - webhooks (webhooks.go, handler_webhooks.go): a site's endpoints in
//     the webhooks bucket, each with a secret sealed under a key derived
//     from the admin token (internal/secret.Sealer); the fan-out consumer
//     (WebhookFanoutDurable) queues one job per subscribed endpoint on
//     WebhookStream, the delivery consumer (WebhookDeliveryDurable) POSTs
//     each, signed (SignWebhook), retried with a doubling delay, logged in
//     the webhook_log bucket. URLs pass internal/netguard unless
//     Config.AllowPrivateAddrs.
//
//   - console sessions (sessions.go, handler_auth.go): signing in with a
//     credential makes a session in the console_sessions bucket (the
//     credential sealed, keyed by the SHA-256 of the cookie), accepted by
//     every gateway on the bus in place of the credential; a request
//     without an Authorization header is authenticated by its
//     SessionCookie (HostSessionCookie under HTTPS), and one other than
//     GET and HEAD must also carry the session's CSRF token in CSRFHeader
//     (403 without it). docs/console.md.
//
// The API (JSON documents in internal/api; "Authorization: Bearer
// <token>", the admin token or a site's deploy token, or a console
// session's cookie):
//
//	POST   /v1/auth/session            api.SignIn → api.Whoami (with the CSRF token) and the session cookie
//	DELETE /v1/auth/session            sign out: the session ends on every gateway
//	GET    /v1/auth/whoami             any credential (a deploy token with ?site=NAME): api.Whoami
//	POST /v1/sites                     admin: create a site (api.CreateSite); its token is answered once
//	GET  /v1/sites                     admin: every site (api.SiteList)
//	GET  /v1/sites/{name}              the site's token or admin: api.SiteStatus, with its origin and previews
//	POST /v1/sites/{name}/deploy       the site's token or admin: a CARv1 body; ?account=NAME (admin, or the token's own)
//	POST /v1/sites/{name}/rollback     the site's token or admin: api.Rollback or no body
//	POST /v1/sites/{name}/bucket       the site's token or admin: api.FollowBucket → api.DeployRecord; the site follows an S3 bucket of its account (403 another account's, 404 none)
//	POST /v1/sites/{name}/webhooks     the site's token or admin: api.AddWebhook → api.Webhook (with its secret, once)
//	GET  /v1/sites/{name}/webhooks     the site's token or admin: api.WebhookList
//	DELETE /v1/sites/{name}/webhooks/{id}          the site's token or admin
//	GET  /v1/sites/{name}/webhooks/{id}/log        the site's token or admin: api.WebhookLog
//	POST /v1/sites/{name}/webhooks/{id}/redeliver  the site's token or admin: api.RedeliverWebhook
//	GET  /v1/content/{root}.car        a node (signed request): a deployed CAR; ?base=ROOT leaves out that root's blocks (a bucket root's partial CAR)
//	GET  /v1/events                    admin: text/event-stream; ?types=a,b&last=N&follow=0
//	POST /v1/accounts                  admin: api.CreateAccount
//	GET  /v1/accounts                  admin: api.AccountList
//	GET  /v1/accounts/{name}           admin, or a site of the account (its session, or its token with ?site=): api.Account
//	POST /v1/accounts/{name}/topup     admin, with Config.Faucet: api.TopUp
//	GET  /v1/accounts/{name}/statement admin or a site of the account: api.Statement; ?since=RFC3339&type=T&limit=N
//	GET  /v1/accounts/{name}/dashboard admin or a site of the account: api.Dashboard
//	GET  /v1/accounts/{name}/history   admin or a site of the account: api.Series (nodes, gateway, topups, balance; with site: reported, requests_gateway, requests_nodes, requests_cache, requests_fallback); ?since=&step=&site=
//	GET  /v1/nodes/{id}/history        admin or the node's operator: api.Series (earned, account:NAME, reported, audit_failed)
//	GET  /v1/events/history            admin: api.Series, events per type (per type and node with group=node); ?since=&step=&types=&group=
//	GET  /v1/nodes                     admin: every node; an operator: its own (api.NodeList)
//	GET  /v1/nodes/{id}                admin or the node's operator: api.NodeInfo (with its AS when the coordinator routes)
//	GET  /v1/placements                admin: api.PlacementList, under-replicated roots first
//	GET  /v1/nodes/{id}/earnings       admin, the node's operator, or the node itself (signed): api.Earnings
//	POST /v1/keys                      admin, or a deploy token of a site of the account (api.CreateS3Key.Site): an S3 access key, its secret answered once (api.S3Key)
//	GET  /v1/keys?account=A[&site=S]   the same: api.S3KeyList (no secrets)
//	DELETE /v1/keys/{id}[?site=S]      the same: revoke an S3 access key
//	GET  /v1/nodes/connect             nodes join the coordinator (WebSocket)
//
// Usage, composed as `verity gateway` composes it (cmd/verity/gateway.go;
// the devnet does the same):
//
//	coord, err := coordinator.New(ctx, coordinator.Config{Bus: bus})
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	ctl, err := control.New(ctx, control.Config{
//		Bus: bus, Coordinator: coord, DataDir: dir,
//		PublicURL: "http://" + ln.Addr().String(),
//	})
//	defer ctl.Close()
//	g, err := gateway.New(gateway.Config{Listener: ln, Sites: ctl.Sites(), API: ctl, Nodes: coord, ...})
//
// Config: Bus, Coordinator (anything with the Coordinator interface's
// methods; *coordinator.Coordinator), DataDir and PublicURL are required
// (ErrConfig); Name defaults to the Bus's name, AdminToken to the generated
// one, MaxDeployBytes to 1 GiB, MaxContentBytes (an S3 object's CAR, stored
// or fetched from nodes) to 5 TiB and 1/64, DeployTimeout to 30 min, Replicas to 2,
// WriteStallTimeout (the event feed) and HolderStall (a CAR fetched from
// a node) to 30 s; Faucet is off. The caller
// owns the Bus and the Coordinator and closes them after the Control.
//
// Status codes (errors.go, statusOf; every error body is an api.Error,
// with a refused CAR's carcheck code and block CID): 400 a malformed body,
// query, CID, account name, or an invalid site name
// (gateway.ErrInvalidSiteName), or a deploy body that is not a one-root
// CARv1 or repeats a block (carcheck.CodeDuplicate); 401 no bearer token, or a
// session cookie naming no live session (ErrUnauthorized, with WWW-Authenticate); 403
// a token, session or node signature that does not authorize the request, or a
// request authenticated by a session cookie without its CSRF token (ErrForbidden), or a top-up without the faucet (ErrFaucetOff); 404 an
// unknown site (gateway.ErrUnknownSite) or account
// (ledger.ErrUnknownAccount), a rollback root not in the history
// (ErrNotInHistory), no CAR for a root here, or no such path
// (ErrNotFound); 409 the site or account exists (ErrSiteExists,
// ledger.ErrAccountExists) or a site has MaxWebhooks (ErrConflict); 413 a deploy over MaxDeployBytes
// (ErrTooLarge); 422 a CAR refused by carcheck.
//
// Specs: docs/deploying-a-site.md, docs/events.md, docs/payments.md.
package control
