// Package gateway is the site edge: the HTTP front door of every site
// origin. It maps the Host of a request (NAME.<Domain>) to a site and its
// current root CID, and
//
//   - serves a visitor's first requests itself: it fetches the file at the
//     request path as a trustless CAR stream from a storage node, verifies
//     every block with internal/verify, and serves only verified bytes
//     (HTML is cached in memory, purged when the site's root changes);
//   - serves the worker's files: /verity.js, /verity-sw.js (with the
//     content-hashed wasm URLs substituted), /.verity/wasm/<hash>.wasm
//     (gzip-precompressed) and /.verity/wasm_exec.<hash>.js;
//   - answers the worker API (documents in internal/api):
//     /.verity/v1/session (site root and verified node records, and a
//     payment voucher), the CAR fallback /.verity/v1/ipfs/<root>/<path>?...
//     (every block verified before it is relayed, see below),
//     /.verity/v1/report, /.verity/v1/scores (workers' node scores, fed to
//     Config.ScoreSink; rate-limited per client address, 429 beyond it),
//     /.verity/v1/traffic (workers' counts of the requests they answered
//     from nodes, their cache and the gateway: bounded, rate-limited per
//     client address, and put on Config.Bus with the requests the gateway
//     answered itself as site.traffic every TrafficInterval; visitors'
//     claims, never billed) and WebRTC signaling, POST /.verity/v1/webrtc/<node id> (an SDP
//     offer relayed to the node through Config.Offers; rate-limited per
//     client address, 429 beyond it).
//
// Any other host is the gateway's own: /metrics (Prometheus), /healthz,
// and every path under /v1/ handed to Config.API. The gateway knows nothing
// of what Config.API serves: in `verity gateway` and the devnet it is the
// control plane (package control: sites, deploys, tokens, accounts, the
// event feed, and the coordinator's node endpoint /v1/nodes/connect).
// With Config.Console, /console/ serves the web console's files (a
// strict Content-Security-Policy, no framing), which call that API only.
//
// What the edge needs from the rest of the network it takes through small
// interfaces, each defined here and each optional but the first two:
//
//	Sites     SiteSource      site name → root and account (required); a
//	                          SiteWatcher purges cached HTML at once
//	Nodes     NodeSource      the nodes' signed records (required); a
//	                          RankedNodeSource ranks them per visitor, a
//	                          PlacementSource narrows them to a root's holders
//	ScoreSink ScoreSink       learns from the workers' scores
//	Offers    OfferRelay      relays WebRTC offers (else 404)
//	Accounts  AccountSource   balances: vouchers, frozen accounts, 402
//	Charges   Charger         takes the bytes served on the HTTPS path
//	API       http.Handler    the gateway's own /v1/ paths (else 404)
//	Bus       *events.Bus     cache.purged, node.reported, the voucher key
//
// The coordinator (package coordinator) is a RankedNodeSource,
// PlacementSource, OfferRelay and AccountSource, its Router a ScoreSink and
// its ledger a Charger; the control plane's KVSites (package control) is
// a SiteSource and SiteWatcher. StaticSites, StaticNodes, NodesFunc and
// HTTPNodes serve a gateway without a network around it.
//
// Usage, a gateway in front of fixed nodes:
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
// and as `verity gateway` composes it, with the coordinator and the
// control plane on one listener (bound first, so the control plane knows
// the URL nodes fetch deployed CARs from; cmd/verity/gateway.go, devnet):
//
//	coord, _ := coordinator.New(ctx, coordinator.Config{Bus: bus})
//	ln, _ := net.Listen("tcp", "127.0.0.1:8080")
//	ctl, _ := control.New(ctx, control.Config{Bus: bus, Coordinator: coord,
//		DataDir: dir, PublicURL: "http://" + ln.Addr().String()})
//	g, _ := gateway.New(gateway.Config{Listener: ln, Sites: ctl.Sites(), API: ctl,
//		Nodes: coord, Offers: coord, Accounts: coord, ScoreSink: coord.Router(),
//		Charges: coord.Ledger(), Bus: bus, DataDir: dir})
//
// Close them in the reverse order: the gateway (which charges what it
// served as it closes), the control plane, the coordinator, the bus.
//
// Config fields have zero-value defaults (see Config); Sites and Nodes are
// required (ErrConfig).
//
// First-visit serving: GET/HEAD of any other path resolves it under the
// root (a trailing slash appends index.html; a directory without it
// answers 301 to add it) and asks up to MaxNodeAttempts nodes in turn; a
// node that fails (5xx, timeout, verification, a stream cut short) is
// charged with it — verity_gateway_node_failures_total, tried last for
// NodeBackoff, an error report to Config.ScoreSink (the router ranks it
// behind for the client's network) and node.reported on the bus — and the
// next is tried. A client's bad request is not a node's failure: a request
// target over MaxRequestURIBytes (8 KiB) is 414 and a path over
// MaxPathSegments (256) 400 before any node is asked, and a node that
// refuses a request with a 4xx is not charged (the next is tried; if every
// one refuses, the client gets the refusal). When no node can serve, the
// visitor gets 502 (504 when the nodes timed out) with a short message:
// the headers go out only once the first verified bytes are in hand. Responses carry
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
// CAR fallback: every block is verified (internal/verify) before it is
// relayed. The headers go out once the CAR is complete or holds 256 KiB of
// verified blocks; a node that fails before then is replaced with nothing
// sent, one that fails after is resumed from the next node at the first
// block not sent (the traversal is the same on every node), and when none
// can finish, the response is aborted (http.ErrAbortHandler: no clean
// chunked end, a reset). Content-Length is sent only for a CAR verified
// whole before the headers. "Cache-Control: immutable" is sent on every
// fallback CAR: it either completes verified or breaks, which no cache
// keeps as complete, and the worker verifies it again.
//
// Metering (meter.go, with Config.Charges): the bytes the gateway serves
// on a site's origin (content and the CAR fallback, not the worker's files
// nor the worker API) are charged to the site's account every
// Config.MeterInterval and at Close, one batch per account. Every site is
// billed: one whose record names no account to PaymentsConfig.DefaultAccount,
// a custom domain to the account of the site that published the root its
// DNSLink record names (SiteRoots; a record naming a root no site published
// is not served, 404), under that site's name; with
// Config.Accounts, a site whose account's balance (less what was served
// and not charged yet) is below -Config.CreditLimit answers 402.
//
// Limits: request heads (ReadHeaderTimeout 10 s, MaxHeaderBytes 64 KiB),
// whole requests (ReadTimeout 30 s), clients that stop reading a response
// (WriteStallTimeout 30 s without progress), concurrent connections
// (MaxConns 4096), report bodies (MaxReportBytes 4 KiB), scores bodies
// (MaxScoresBytes 32 KiB), request targets (MaxRequestURIBytes 8 KiB) and
// paths (MaxPathSegments 256). Per client (internal/ratelimit; a client is
// an address prefix, ClientPrefixes: one IPv4 address, one IPv6 /64):
// connections held (MaxConnsPerClient 256: more are closed as they are
// accepted, so one client cannot take the MaxConns every visitor shares),
// requests (RequestRate 100/s, RequestBurst 500: 429 with Retry-After),
// WebRTC offers, score reports, traffic reports and vouchers (their own
// rates). Behind a
// reverse proxy, TrustedProxies names it: the client is then read from
// X-Forwarded-For, and the proxy's connections are not capped per client.
//
// Status codes on site origins (errors.go, statusOf): 400 malformed path,
// CID or query, a path over MaxPathSegments, or an invalid site name
// (ErrInvalidSiteName, a *SiteNameError saying why); 402 the site's account
// ran out of credit (ErrPaymentRequired); 403 a fallback CID that is not a
// current or recent root of the site; 404 unknown site (ErrUnknownSite;
// also a custom domain whose root no site published) or path; 405 method;
// 413 report, scores or traffic body over its limit, or an offer over the SDP
// limit; 414 a request target over MaxRequestURIBytes (ErrURITooLong); 429
// too many requests, offers, score or traffic reports (ErrRateLimited); 502 no node
// could serve (ErrNoNode) or a custom domain's lookup failed (ErrDNSLink);
// 503 the node cannot take an offer now (ErrUnavailable); 504 nodes timed
// out (ErrTimeout). Under /.verity/ error bodies are {"error": "..."}
// (api.Error), elsewhere text.
//
// Metrics: verity_gateway_bytes_served_total{kind}, requests_total{kind,code},
// node_reports_total{node,reason}, node_failures_total{node,reason},
// html_cache_hits_total, html_cache_misses_total, html_cache_bytes,
// vouchers_limited_total, limited_total{limit="conns"|"requests"}.
//
// Payments (PaymentsConfig): the gateway's voucher key is kept in
// DataDir/payment.key and, with a Bus, published in the coordinator's
// gateways bucket; a session request with ?key=s... gets a voucher for
// that session key (Session.Voucher), or PaymentError "account_frozen"
// (docs/payments.md).
//
// Specs: docs/protocol.md section 6; the trustless gateway
// (https://specs.ipfs.tech/http-gateways/trustless-gateway/).
package gateway
