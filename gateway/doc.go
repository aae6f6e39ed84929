// Package gateway is the HTTP front door of every site origin. It maps the
// Host of a request (NAME.<Domain>) to a site and its current root CID, and
//
//   - serves a visitor's first requests itself: it fetches the file at the
//     request path as a trustless CAR stream from a storage node, verifies
//     every block with internal/verify, and serves only verified bytes
//     (HTML is cached in memory, purged when the site's root changes);
//   - serves the worker's files: /verity.js, /verity-sw.js (with the
//     content-hashed wasm URLs substituted), /.verity/wasm/<hash>.wasm
//     (gzip-precompressed) and /.verity/wasm_exec.<hash>.js;
//   - answers the worker API: /.verity/v1/session (site root and verified
//     node records), the CAR fallback /.verity/v1/ipfs/<root>/<path>?...,
//     /.verity/v1/report, /.verity/v1/scores (workers' node scores, fed to
//     the coordinator's router; rate-limited per client address, 429
//     beyond it) and WebRTC signaling, POST
//     /.verity/v1/webrtc/<node id> (an SDP offer relayed to the node through
//     the coordinator; rate-limited per client address, 429 beyond it).
//
// Any other host is the gateway's own: /metrics (Prometheus), /healthz and,
// with a Bus, the coordinator's node endpoint /v1/nodes/connect.
//
// With a Bus and Config.DataDir the gateway's own host also serves the
// site API (handler_api.go; JSON, "Authorization: Bearer <token>"):
// POST /v1/sites (admin: create a site, its deploy token answered once),
// GET /v1/sites (admin), GET /v1/sites/{name}, POST
// /v1/sites/{name}/deploy (a CARv1 body) and POST
// /v1/sites/{name}/rollback (the site's token or the admin's), and GET
// /v1/content/{root}.car for nodes (signed by their node key). Deploy
// stages the upload under DataDir/uploads, verifies the whole CAR
// (internal/carcheck), keeps it as DataDir/content/<root>.car, records it
// in the deploys bucket and emits site.deployed; a refused upload leaves
// nothing behind. The publisher consumer (durable PublisherDurable, shared
// by every gateway) publishes the site once Config.Replicas live nodes
// hold the root (coordinator placements). Tokens are kept as SHA-256 with
// a per-site salt in the tokens bucket and compared in constant time; the
// admin token is Config.AdminToken or generated into DataDir/admin-token.
//
// Accounts (accounts.go, handler_accounts.go, meter.go): with the deploy
// API the gateway runs an internal/ledger Ledger on the bus and serves, to
// the admin, POST/GET /v1/accounts, GET /v1/accounts/{name}, POST
// /v1/accounts/{name}/topup (the development faucet, only with
// Config.Faucet), GET /v1/accounts/{name}/statement and
// /v1/accounts/{name}/dashboard, and GET /v1/nodes/{id}/earnings (also to
// the node itself, signed with its key). Sites belong to accounts (Site.Account,
// SiteRecord.Account, chosen at deploy: DeployFor). The bytes the gateway
// serves on a site's origin (content and the CAR fallback) are charged to
// its account every Config.MeterInterval, and at Close; a site whose
// account's balance is below -Config.CreditLimit answers 402.
//
// With Config.Bus (internal/events) the gateway runs a coordinator on the
// bus (package coordinator; its settings in Config.Coordinator): nodes join
// it over WebSocket on the gateway's own host, and when Config.Nodes is nil
// its live nodes are the gateway's NodeSource; when Config.Sites is nil, a
// KVSites on the sites bucket is its SiteSource. KVSites mirrors the bucket
// through a watch (every gateway sees every change, wherever written) and
// writes with compare-and-set: Publish and Rollback emit site.published and
// site.rolled_back. When a site's root changes the gateway drops its cached
// HTML and emits cache.purged. The caller owns the Bus.
//
// Usage:
//
//	g, err := gateway.New(gateway.Config{
//		Listen: "127.0.0.1:8080",
//		Sites:  gateway.NewStaticSites(map[string]string{"demo": root}),
//		Nodes:  gateway.NewHTTPNodes(gateway.HTTPNodesConfig{URLs: urls}),
//	})
//	if err != nil { ... }
//	defer g.Close()
//	err = g.Run(ctx) // http://demo.localhost:8080/
//
// Config fields have zero-value defaults (see Config); Sites and Nodes are
// required unless Bus is set. SiteSource and NodeSource are small
// interfaces: KVSites and StaticSites implement the first; the coordinator,
// StaticNodes, NodesFunc and HTTPNodes the second. A NodeSource that is also
// a RankedNodeSource (the coordinator) lists nodes ranked for each visitor's
// address, for sessions and the gateway's own fetches.
//
// First-visit serving: GET/HEAD of any other path resolves it under the
// root (a trailing slash appends index.html; a directory without it
// answers 301 to add it) and asks up to MaxNodeAttempts nodes in turn; a
// node that fails (status, timeout, verification) is counted in
// verity_gateway_node_failures_total and the next is tried. Responses carry
// Content-Type by extension, ETag "<cid>", Content-Length, Accept-Ranges.
// Paths, content types and ranges follow internal/webfile, the rules the
// worker applies too: an empty path segment ("//") is 400; a single range
// ("a-b", "a-", "-n") is answered 206 and only its blocks are fetched
// (entity-bytes); an unsatisfiable one 416 with "Content-Range: bytes
// */size"; several ranges or a malformed header get the full body; If-Range
// honours the range only on a strong ETag match. A file is streamed as it
// is verified; if its node fails mid-body the gateway resumes from another
// node at the first unsent byte, and if none can finish it aborts the
// response (the client sees a broken transfer, never a short body).
//
// Limits: request heads (ReadHeaderTimeout 10 s, MaxHeaderBytes 64 KiB),
// whole requests (ReadTimeout 30 s), clients that stop reading a response
// (WriteStallTimeout 30 s without progress), concurrent connections
// (MaxConns 4096), report bodies (MaxReportBytes 4 KiB), scores bodies
// (MaxScoresBytes 32 KiB).
//
// Status codes (errors.go, statusOf): 400 malformed path, CID or query, or
// an invalid site name (ErrInvalidSiteName, a *SiteNameError saying why),
// or a deploy body that is not a one-root CARv1; 401 no bearer token
// (ErrUnauthorized); 402 the site's account ran out of credit
// (ErrPaymentRequired); 409 the site or account exists (ErrSiteExists,
// ledger.ErrAccountExists); 404 an unknown account (ledger.ErrUnknownAccount)
// or the accounts API off (ErrAccountsOff); 403 a top-up without the faucet
// (ErrFaucetOff); 422 a CAR refused
// by carcheck (its code and the block's CID in the JSON body);
// 403 a fallback CID that is not a current or recent root of the site;
// 404 unknown site or path, or a rollback root not in the history; 405 method; 413 report body over 4 KiB;
// 413 a deploy over MaxDeployBytes; 502 no node could serve; 504 nodes
// timed out.
//
// Metrics: verity_gateway_bytes_served_total{kind}, requests_total{kind,code},
// node_reports_total{node,reason}, node_failures_total{node,reason},
// html_cache_hits_total, html_cache_misses_total, html_cache_bytes.
//
// Payments (PaymentsConfig): the gateway's voucher key is kept in
// DataDir/payment.key and published in the coordinator's gateways bucket;
// a session request with ?key=s... gets a voucher for that session key
// (Session.Voucher), or PaymentError "account_frozen" (docs/payments.md).
//
// Specs: docs/protocol.md section 6; the trustless gateway
// (https://specs.ipfs.tech/http-gateways/trustless-gateway/).
package gateway
