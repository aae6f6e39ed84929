// Package nodeproto is the wire protocol between storage nodes and the
// coordinator: the JSON messages of the node WebSocket, the join signature,
// the settlement batch a node submits, and the signature a node puts on
// its HTTP requests to a gateway. Both sides import it: the coordinator
// (package coordinator) serves it, the node's client (package node) speaks
// it. Nodes are run by third parties, so what is here is a public protocol:
// field names and encodings do not change (testdata/messages.golden pins
// them).
//
// It holds types and pure functions only, on the standard library,
// internal/noderecord and internal/payment: no WebSocket library, no NATS,
// no metrics, so the software a node operator runs links none of the
// coordinator's server.
//
// # Message flow
//
// A node opens a WebSocket at ConnectPath ("/v1/nodes/connect") on the
// gateway's own host; every message is a text frame holding one JSON
// Message: a Type and the one field it names.
//
//  1. coordinator → node: challenge {nonce, coordinator, expires}
//     (NonceSize random bytes, the coordinator's id, an expiry).
//  2. node → coordinator: join {node, challenge, signature, record, status}:
//     the challenge echoed, the node's signed record (internal/noderecord),
//     its status (a Heartbeat), its operator's credential (operator,
//     "vop_NAME.SECRET"; refused with CloseOperatorRefused) and an ed25519
//     signature by the node key over
//     JoinSigningBytes:
//     "verity-node-join/1\n" coordinator "\n" hex(nonce) "\n" expires "\n" node.
//  3. coordinator → node: welcome {node, session, heartbeatMs}. The
//     coordinator sends nothing else before it (a node ends a session whose
//     first message after the join is not the welcome), though the node may
//     already be listed, and offered peers, while it is being admitted.
//
// Then, in any order:
//
//   - node → coordinator: heartbeat {capacity, freeDisk, blocks, load,
//     version, region, record?} every heartbeatMs, with the record again
//     whenever it changed (certificate rotation).
//   - coordinator → node: placed {roots}, once right after welcome: every
//     root placed on the node (it may drop other pins).
//   - coordinator → node: pin {root, car, sources, site, grant}: fetch the CAR at
//     car with a GET signed by SignContentRequest (or else from sources,
//     other holders' trustless CAR URLs), verify every block and the whole
//     DAG, pin root; node → coordinator: pinned {root, error?}.
//   - node → coordinator: repair {id, cid}, only when welcome listed the
//     "repair" feature: a block of its store is corrupt; coordinator →
//     node: repair-sources {id, cid, sources, grant}, other holders' HTTP URLs
//     (grant: see "Content requests over a paying node's HTTP port").
//   - coordinator → node: reported {reasons}: failures visitors' workers
//     reported about the node, by reason, since the last such message.
//   - coordinator → node: webrtc-offer {id, sdp}; node → coordinator:
//     exactly one webrtc-answer {id, sdp | code, error} per offer, in any
//     order. SDP is at most MaxSDPBytes either way.
//   - coordinator → node: payments {full?, gatewayKeys, accounts, nodes},
//     complete (full) right after welcome on a coordinator with payments,
//     then with the accounts that changed.
//   - node → coordinator: settle {id, batch} (a Batch of the node's own
//     receipts for one account), only after payments was received in this
//     session; coordinator → node: settled {id, result | code, rejected}.
//
// docs/protocol.md shows the payment messages (§3.1) and the signaling
// ones (§6.7) in full; package coordinator's doc has the checks the
// coordinator makes at each step and its close codes.
//
// # Node-signed HTTP requests
//
// A node fetching from a gateway (a pin order's CAR, its earnings) sets
//
//	Authorization: VerityNode <node id>:<unix seconds>:<base64url signature>
//
// with SignContentRequest: an ed25519 signature over ContentSigningBytes,
// "verity-node-request/1\n" method "\n" path "\n" unix. The gateway checks
// it with VerifyContentRequest against the keys of the nodes it knows,
// allowing ContentAuthSkew of clock difference.
//
// # Versioning
//
// The signed strings carry their version (JoinPrefix, ContentPrefix, "/1").
// The message set grows without a version number: a new message gets a new
// Type, and new fields are optional (omitempty) so that older peers ignore
// them. A node ignores message types it does not know, but a coordinator
// closes the connection on one (1002), so a node sends a new type only
// once the coordinator has shown it understands it, the way settle waits
// for payments. A change that older peers would misread would need a new
// ConnectPath or a new signing prefix.
//
// # Errors and codes
//
// Codes on the wire are stable strings: OfferCode* in a refused
// webrtc-answer, SettleCode* or a payment code (payment.Code) in settled.
// In Go, a refused offer is an *OfferError (wrapping ErrOfferRefused) that
// carries its code, and a request that does not authenticate is a
// *ContentAuthError (wrapping ErrContentAuth). The close codes with which
// the coordinator ends a session are its own (package coordinator).
package nodeproto
