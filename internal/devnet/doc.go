// Package devnet runs a whole Verity network in one process for local
// development and tests: a gateway and a few storage nodes on loopback, with
// the demo site (or any directory) imported into every node and published as
// site "demo".
//
// Usage:
//
//	d, err := devnet.New(ctx, devnet.Config{})
//	if err != nil { ... }
//	defer d.Close()
//	fmt.Println(d.SiteURL("demo")) // http://demo.localhost:8080/
//	err = d.Run(ctx)                // until ctx is done
//
// Config (zero values are defaults): DataDir os.UserCacheDir()/verity/devnet,
// Listen 127.0.0.1:8080 (the gateway), Nodes 2, DemoDir the embedded demo
// site (package web), Logger slog.Default().
//
// Layout of DataDir: node-1/, node-2/, ... hold each node's identity key,
// certificates and blocks; site/ holds the demo site as imported. Running
// again on the same DataDir reuses the nodes' identities and blocks;
// importing the same content again changes nothing.
//
// Nodes listen for HTTP on 127.0.0.1:0 and for WebTransport on UDP
// 127.0.0.1:0; the gateway lists them from their live signed records.
package devnet
