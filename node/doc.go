// Package node is a Verity storage node: an on-disk blockstore, the IPFS
// trustless gateway API over HTTP, and the same API over WebTransport
// streams framed with internal/wire.
//
// Usage:
//
//	n, err := node.New(node.Config{DataDir: dir, Logger: logger})
//	if err != nil { ... }
//	defer n.Close()
//	roots, err := n.ImportCAR(ctx, carFile)
//	err = n.Run(ctx) // serves until ctx is done
//
// New opens the store and the identity and binds both listeners, so
// HTTPURL, WebTransportURL and Record are valid before Run.
//
// # Data directory
//
//	DataDir/identity.key      ed25519 node key (PKCS#8 PEM, mode 0600)
//	DataDir/webtransport.pem  current and next WebTransport certificates + keys
//	DataDir/blocks/           flatfs blockstore (next-to-last/2 sharding; imports write its files themselves, blockfile.go; each import synced once, syncStore)
//	DataDir/tmp/              a marker per import writing blocks (New empties it, then collects garbage), usage.run while the stored bytes are not saved
//	DataDir/pins.json         roots kept: {"roots": [placed], "local": [PinLocal]}
//
// # HTTP API
//
//	GET /ipfs/<cid>[/<path>]?format=raw|car   trustless gateway (boxo/gateway)
//	GET /.well-known/verity/node              current signed node record (JSON)
//	GET /healthz                              {"ok":true,"id":"n..."}
//	GET /metrics                              Prometheus metrics
//
// Only verifiable responses are served (application/vnd.ipld.raw and
// application/vnd.ipld.car); other requests for /ipfs get 406. CORS allows
// GET from any origin: the content is public and clients verify it.
//
// # WebTransport
//
// The WebTransport endpoint (WebTransportURL, path /verity/v1) accepts
// sessions from any origin (CheckOrigin always allows: content is public and
// verified by the client, and no credentials are involved). Each
// bidirectional stream carries one wire.Request; it is served by the same
// http.Handler as the HTTP API, so the bytes are identical, except that a
// client offering the bao16 block encoding (wire.HeaderBlocks) gets a 2xx
// CAR with each raw BLAKE3 block replaced by its Bao encoding (built on
// the way out from the parents the store's check of the block computed,
// blocks.go, outboard.go; Config.DisableBao turns it off), so it verifies
// 16 KiB at a time; with bao16-slices, a leaf that a ranged request
// covers only in part goes as the Bao slice of that part (slicePlan). A
// stream that fails after the head was sent is reset with
// wire.CodeInternal (or wire.CodeTimeout, wire.CodeCancelled).
//
// The WebTransport certificate is a self-signed ECDSA P-256 certificate valid
// for at most 14 days (browsers refuse longer ones for
// serverCertificateHashes). The node keeps a current and a pre-generated next
// certificate and publishes both SHA-256 hashes in its signed record
// (internal/noderecord); CertRotateBefore the current one expires, next
// becomes current and a new next is generated.
//
// Every block read from disk is re-hashed before it is served: a block
// damaged on disk is refused (the response fails, a CAR stream is reset),
// counted in verity_node_corrupt_blocks_total and logged, so the node never
// sends bytes it knows to be wrong. It is then dropped and fetched again,
// verified, from another holder the coordinator names
// (CoordClient.RepairSources), counted in verity_node_block_repairs_total. Clients verify everything anyway.
// ImportCAR verifies every block.
//
// # Coordinator
//
// With Config.Coordinator set, Run keeps the node joined to that
// coordinator (CoordClient, over WebSocket, authenticated by the node key;
// the messages are internal/nodeproto's) while it serves: the signed record on join and whenever it
// changes, and Status (capacity, free disk, blocks, load, version, region)
// in every heartbeat. Run leaves before it stops serving.
//
// The coordinator places content with pin orders (nodeproto.Pin): the
// node fetches the CAR from the order's URL with a GET signed by its node
// key (nodeproto.SignContentRequest), verifies and stores every block
// (ImportCAR), checks the CAR's only root is the order's root, records it
// in pins.json and answers Pinned; the coordinator then emits
// content.replicated. A root already pinned is answered at once, so a
// node that rejoins is reconciled cheaply. After each join the coordinator
// lists every root placed on the node: Reconcile unpins the others and
// runs GC, which deletes only blocks no pinned root (placed, or local:
// PinLocal, used for operator imports) reaches, and aborts before deleting
// anything if a pinned DAG cannot be walked. Imports and collections
// exclude each other.
//
// Payments (PaymentConfig, docs/payments.md): a stream whose request
// carries a voucher (wire.HeaderVoucher) is admitted only with a valid,
// unexpired voucher of a gateway key the coordinator published and an
// account that is not frozen (else 402 with wire.HeaderPaymentError); the
// receipts the client sends on the stream are checked and stored in
// DataDir/receipts (internal/receiptstore) before the stream's credit
// window grows; a stream without receipts is reset with
// wire.CodePaymentTimeout, one with a refused receipt with
// wire.CodePaymentRefused. Receipts are settled through the coordinator
// when PaymentConfig.Policy says so, or at once with SettleNow; Receipts
// and Uncommitted report what the node holds.
//
// Errors: ErrConfig, ErrBadCAR, ErrCorruptBlock, ErrClosed, ErrRunning,
// ErrNoCoordinator, ErrSettleRefused with *SettleError; of the coordinator
// client, ErrNoPayments, ErrSessionEnded, ErrCoordinatorProtocol (errors.go).
package node
