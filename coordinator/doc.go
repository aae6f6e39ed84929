// Package coordinator is the network's coordinating role: the node registry
// and health, routing (which nodes a visitor should use), placement and
// replication, WebRTC signaling relay, and the ledger. It shares the gateway
// binary by default and keeps its state on NATS JetStream.
//
// Today the gateway takes its sites and nodes from a static table
// (gateway.StaticSites, gateway.StaticNodes, gateway.HTTPNodes); this package
// replaces those sources behind the same small interfaces.
package coordinator
