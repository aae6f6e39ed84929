// Package api holds the JSON documents of Verity's HTTP API: what the
// servers (package gateway on site origins, package control on the
// gateway's own host) encode and what clients (internal/siteclient, the
// tests, the CLI) decode. It has no behaviour and imports only the
// standard library and internal/noderecord (itself standard-library
// only), so a client of the API links neither a server nor NATS.
//
// Control plane, on the gateway's own host (package control; JSON,
// "Authorization: Bearer <token>" or a console session's cookie):
//
//	POST /v1/auth/session                  SignIn → Whoami, and the session cookie
//	GET  /v1/auth/whoami                   → Whoami
//	POST /v1/sites                         CreateSite → 201 SiteCreated
//	GET  /v1/sites                         → SiteList
//	GET  /v1/sites/{name}                  → SiteStatus
//	POST /v1/sites/{name}/deploy           CARv1 body → 202 DeployRecord
//	POST /v1/sites/{name}/rollback         Rollback (or no body) → SiteRecord
//	POST /v1/accounts                      CreateAccount → 201 Account
//	GET  /v1/accounts                      → AccountList
//	GET  /v1/accounts/{name}               → Account
//	POST /v1/accounts/{name}/topup         TopUp → Account
//	GET  /v1/accounts/{name}/statement     → Statement
//	GET  /v1/accounts/{name}/dashboard     → Dashboard
//	GET  /v1/accounts/{name}/history       → Series
//	GET  /v1/nodes/{id}/history            → Series
//	GET  /v1/events/history                → Series
//	GET  /v1/nodes                         → NodeList
//	GET  /v1/nodes/{id}                    → NodeInfo
//	GET  /v1/placements                    → PlacementList
//	GET  /v1/nodes/{id}/earnings           → Earnings
//	GET  /v1/events                        text/event-stream of Event
//
// Every error answer of the control plane is an Error.
//
// Site origins (package gateway): GET /.verity/v1/session answers a
// Session; POST /.verity/v1/report takes a Report. See docs/protocol.md
// section 6.
package api
