// Package devnet runs a whole Verity network in one process for local
// development and tests: an embedded NATS JetStream bus, a gateway with its
// coordinator, and a few storage nodes on loopback that join it over real
// WebSocket, with the demo site (or any directory) imported into every node
// and published as site "demo" through the sites KV bucket.
//
// Usage:
//
//	d, err := devnet.New(ctx, devnet.Config{})
//	if err != nil { ... }
//	defer d.Close()
//	go d.Run(ctx)                   // until ctx is done
//	err = d.WaitReady(ctx)          // every node joined
//	fmt.Println(d.SiteURL("demo"))  // http://demo.localhost:8080/
//
// Config (zero values are defaults): DataDir os.UserCacheDir()/verity/devnet,
// Listen 127.0.0.1:8080 (the gateway), Nodes 2, DemoDir the embedded demo
// site (package web), ASNTable a built-in table with loopback as one
// network (AS64511, as in internal/asn/testdata), HeartbeatInterval 10 s,
// Logger slog.Default().
//
// Layout of DataDir: nats/ holds the event stream and KV buckets (sites,
// nodes, placements); node-1/, node-2/, ... hold each node's identity key,
// certificates and blocks; site/ holds the demo site as imported. Running
// again on the same DataDir reuses all of it: the nodes keep their
// identities and blocks, and publishing unchanged content is not a new
// version.
//
// Nodes listen for HTTP on 127.0.0.1:0 and for WebTransport on UDP
// 127.0.0.1:0 and join the gateway's coordinator when Run starts them; the
// session endpoint lists the live ones ranked by the coordinator's router.
package devnet
