// Package coordinator is the network's coordinating role: the node registry
// and health, routing (which nodes a visitor should use), placement and
// replication, and later signaling and the ledger. It shares the gateway
// binary by default and keeps its state on NATS JetStream (internal/events).
//
// # Registry
//
// Nodes never get NATS credentials; they join over HTTP(S) + WebSocket at
// nodeproto.ConnectPath ("/v1/nodes/connect"), text messages of JSON
// (nodeproto.Message; internal/nodeproto is the wire protocol, this
// package serves it):
//
//  1. coordinator → node: {"type":"challenge","challenge":{nonce, coordinator, expires}}
//     (32 random bytes, the coordinator's id, an expiry ChallengeTTL ahead).
//
//  2. node → coordinator: {"type":"join","join":{node, challenge, signature, record, status}}:
//     the challenge echoed, the node's signed record (internal/noderecord) and
//     an ed25519 signature by the node key over nodeproto.JoinSigningBytes:
//     "verity-node-join/1\n" coordinator "\n" hex(nonce) "\n" expires "\n" node.
//
//  3. The coordinator checks the challenge (issued on this connection, unused,
//     unexpired; each is consumed by its first answer, so a replayed join is
//     refused), the record (signature, id matching its key, validity), that
//     the claimed node id is the record's, and the signature; it stores the
//     node in the "nodes" KV bucket as live, emits node.joined and answers
//     {"type":"welcome","welcome":{node, session, heartbeatMs}}.
//
//  4. node → coordinator every heartbeatMs: {"type":"heartbeat","heartbeat":{capacity, blocks,
//     freeDisk, load, version, region, record?}}, with the record again
//     whenever it changed (certificate rotation).
//
//  5. at any time after welcome, WebRTC signaling (RelayOffer):
//     coordinator → node {"type":"webrtc-offer","offer":{id, sdp}}, and
//     node → coordinator {"type":"webrtc-answer","answer":{id, sdp | code,
//     error}} (node.CoordClientConfig.Offers answers them). An offer for a node
//     whose session is on another coordinator sharing the bus is sent
//     there with a core NATS request on SignalSubjectPrefix + its id.
//
//  6. coordinator → node, any time after welcome: {"type":"pin","pin":{root, car, sources, site, partial?, base?, check?}}:
//     fetch the CAR at car (a GET signed with nodeproto.SignContentRequest), or
//     else from sources (other holders' trustless CAR URLs), verify
//     every block and that the whole DAG is there, pin root; node → coordinator: {"type":"pinned","pinned":{root, error?}}.
//     A root pinned already is answered at once, unless check is set (the
//     node's holding is pending: new, or ordered again after a failed
//     attempt or audit): then the node walks its DAG and fetches it again
//     if a block is missing.
//     Right after welcome: {"type":"placed","placed":{roots}}, every root
//     placed on the node (it drops other pins and collects their blocks),
//     then a pin order for each of them.
//
// A node silent for MissedHeartbeats × HeartbeatInterval (default 3 × 10 s)
// is marked lost and node.lost is emitted; a node that closes normally is
// lost at once ("node left"). Any coordinator sharing the bus declares a
// silent node lost, so nodes of a crashed coordinator are not kept forever;
// a new session of the same node supersedes the old one, wherever it is.
//
// Before storing the node (between 3 and the welcome) the coordinator
// checks the join's operator credential (Join.Operator, see
// CreateOperator) and proves the record's URLs (Config.URLProver, by
// default URLProof: public addresses only unless AllowPrivateAddrs, and a
// nonce signed by the node key at nodeproto.ProofPath over HTTP and
// WebTransport). A node's "pinned" makes its holding HolderAuditing until
// Audit verified random blocks of the root fetched from it (see audit.go);
// audits repeat about every AuditInterval. A node that finds a corrupt
// block asks for sources with repair {id, cid}; the coordinator answers
// repair-sources {id, cid, sources, grant} (welcome lists the "repair" feature).
//
// Refusals close the WebSocket with a code and a reason naming the check:
// 1008 (policy violation) for authentication failures (ErrSignature,
// ErrChallengeReplayed, ErrChallengeExpired, ErrChallengeMismatch,
// ErrRecord, ErrNodeMismatch), 1007 for malformed JSON, 1003 for binary
// messages, 1002 for a message out of order, 1009 for a message over
// MaxMessageBytes, 4000 heartbeat timeout, 4001 superseded by a newer
// session, 4002 no join before the challenge expired, 4003 no valid
// operator credential or the operator was revoked, 4004 a URL not proven
// (another key, a private address, or URLs changed in a heartbeat), 1001
// coordinator shutting down.
//
// # Placement
//
// Every coordinator runs the placement consumer (durable PlacementDurable,
// shared, so each site.deployed is placed once; Config.NoPlacement turns it
// off): Place writes R live nodes for the root into the placements bucket
// (Placement, compare-and-set), least loaded first, keeping live holders.
// Every coordinator watches that bucket and sends pin orders to the
// pending nodes connected to it, again when a node rejoins (so it is
// reconciled); a node's answer marks it pinned or failed and a success
// emits content.replicated (as does a site added to the placement of a
// root already held, once per holder: the publisher reads the placement's
// sites when it hears of a holder). A failed holder is ordered again after
// PinRetryMin, doubling to PinRetryMax, until PinAttempts failures; then
// the root is placed on another node. Too few live nodes → ErrTooFewNodes, and the
// event is retried with backoff. The re-replication consumer (durable
// ReplicationDurable, shared) runs Rereplicate on node.lost and
// node.joined: every root with fewer live holders than its replicas is
// placed again. The repair pass (Config.RepairInterval, one coordinator
// of a cluster at a time) does the same over every placement, then drops
// holders beyond a root's replicas once all its live copies are audited
// (TrimSurplus: a lost holder that came back with its copy, a rebalancing
// move's source kept while another holder was short). Nodes prove their identity on content
// fetches with AuthenticateNode (header "Authorization: VerityNode
// <node>:<unix>:<sig>", ErrNodeAuth).
//
// # Collection
//
// A placement stays until it is removed. The collector (collect.go; one
// coordinator of a cluster at a time, through the lease CollectLease in
// the leases bucket, about every Config.CollectInterval) unplaces roots
// that nothing has referenced for Config.CollectGrace: a placement is a
// candidate only when a ReferenceSource (AddReferenceSource; the S3 API's
// s3api.References) claims every one of its labels, and none of the
// sources references it. It is stamped, then marked with compare-and-set
// once past the grace period, the sources are read again and the
// placement deleted at the marked revision; every coordinator tells the
// holders connected to it to unpin it, and content.collected is emitted.
// A store that records a reference calls Keep afterwards: it clears a
// mark (the delete then fails) or reports the root unplaced, to be placed
// again.
//
// Usage (coordinator side; Nodes makes a Coordinator a gateway.NodeSource,
// NodesFor a gateway.RankedNodeSource):
//
//	c, err := coordinator.New(ctx, coordinator.Config{Bus: bus})
//	defer c.Close()
//	mux.Handle(nodeproto.ConnectPath, c.Handler())
//	recs, err := c.Nodes(ctx)
//	ranked, err := c.NodesFor(ctx, clientIP) // ranked by Config.Router
//
// The node side is node.CoordClient, which node.Node runs when its
// Config.Coordinator is set; the coordinator's tests use it too:
//
//	nc, err := node.NewCoordClient(node.CoordClientConfig{
//		URL: "https://gw.example", Key: priv, Record: currentRecord, Status: status})
//	defer nc.Close()
//
// # Routing
//
// Router ranks candidate nodes for a client address: nodes in the client's
// ASN first, then nodes in the client's region (its country from the ASN
// table unless given), then by cost = RTT × (1 + LoadWeight × load), where
// RTT is the moving average of the samples clients of the same ASN (or /24,
// /48 when the ASN is unknown) reported for that node, DefaultRTT without
// samples. The ASN table (internal/asn) is loaded from a file in
// iptoasn's tab-separated range format ("start\tend\tASN\tcountry\tdescription",
// IPv4 and IPv6, gzip or not) or as "prefix ASN [country]" lines; see
// internal/asn/testdata for tiny samples.
//
// # Payments
//
// The coordinator runs the ledger (internal/ledger, Ledger) with the gateway
// keys published in the KV bucket BucketGateways (PublishGatewayKey,
// GatewayKeys). After welcome it sends each node a payments message with
// the gateway keys, account balances and freezes and the live node count,
// and pushes changes as they happen; nodes submit settle batches
// (nodeproto.Batch) for their own key and get settled with the ledger's
// nodeproto.SettleResult (node.CoordClient.Settle,
// node.CoordClientConfig.OnPayments). Refusal codes: nodeproto.SettleCode*
// and the payment codes.
package coordinator
