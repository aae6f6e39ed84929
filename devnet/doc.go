// Package devnet runs a whole Verity network in one process for local
// development, tests and benchmarks (`verity devnet`, `make run`, e2e,
// e2e/cmd/bench): an embedded NATS JetStream bus; a gateway composed as
// `verity gateway` composes it, a coordinator, the control plane (package
// control) and the site edge (package gateway) on one listener; and a few
// storage nodes on loopback that join it over real WebSocket, with the
// demo site (or any directory) deployed as site "demo" through the deploy
// path: verified by the control plane, placed on min(Nodes, 2) nodes,
// which fetch, verify and pin it, then published. The parts are reachable
// (Gateway, Control, Coordinator, Sites, Nodes, Bus) for tests to drive.
//
// Usage:
//
//	d, err := devnet.New(ctx, devnet.Config{})
//	if err != nil { ... }
//	defer d.Close()
//	go d.Run(ctx)                   // until ctx is done
//	err = d.WaitReady(ctx)          // every node joined, the site published
//	fmt.Println(d.SiteURL("demo"))  // http://demo.localhost:8080/
//
// Config (zero values are defaults): DataDir os.UserCacheDir()/verity/devnet,
// Listen 127.0.0.1:8080 (the gateway), Nodes 2, DemoDir the embedded demo
// site (package web), ASNTable a built-in table with loopback as one
// network (AS64511, as in internal/asn/testdata), HeartbeatInterval 10 s,
// Logger slog.Default().
//
// Layout of DataDir: nats/ holds the event stream and KV buckets (sites,
// nodes, placements, tokens, deploys, accounts); gateway/ holds the
// gateway's admin token, voucher key and deployed CARs; node-1/, node-2/, ... hold each node's identity
// key, certificates, blocks and pins; site/ holds the demo site and
// site.car its CAR. Running again on the same DataDir reuses all of it: the
// nodes keep their identities and pins, so the redeploy is placed at once
// and publishing unchanged content is not a new version.
//
// Nodes listen for HTTP on 127.0.0.1:0 and for WebTransport on UDP
// 127.0.0.1:0 and join the gateway's coordinator when Run starts them; the
// session endpoint lists the live ones ranked by the coordinator's router.
package devnet
