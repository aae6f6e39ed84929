// Package verify reads a trustless-gateway CAR stream and yields only bytes
// it has verified: every block's multihash against its CID, and every block
// being the one the traversal (path, then entity, then range) expects next.
//
// It consumes the response to
//
//	GET /ipfs/<root>/<path>?format=car&dag-scope=entity[&entity-bytes=from:to]
//	Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y
//
// exactly as boxo's gateway (BlocksBackend + NewHandler) emits it: the CAR
// header names the entity's CID (or the empty identity CID when the path does
// not resolve), then come the blocks loaded while resolving the path (each
// directory, and the HAMT shards along each lookup), the entity's root block,
// and for files the blocks of the file DAG that overlap the requested range,
// in depth-first order; for a HAMT-sharded directory entity, all of its
// shards depth-first. With dups=y a block appears every time the traversal
// loads it. Blocks with an identity multihash are never sent; the reader
// takes their bytes from the CID.
//
// Usage:
//
//	req := verify.Request{Root: root, Path: []string{"css", "site.css"}}
//	resp := get(req.Target()) // over any transport
//	r := verify.NewReader(resp, req, verify.Options{})
//	ent, err := r.Entity()    // path resolved, entity root verified
//	if errors.Is(err, verify.ErrNotFound) { ... 404 ... }
//	io.Copy(w, r)             // verified bytes of the requested range only
//
// Read never returns unverified bytes, and never ends with io.EOF before the
// traversal is complete: a short stream fails with ErrTruncated, and a stream
// with blocks after the traversal completed fails too.
//
// Options (zero values are defaults): MaxBlockSize 2 MiB; OnBlock is called
// after each verified block (for receipts); Bao reads the bao16 body of the
// stream protocol (docs/protocol.md §3.2) instead of a plain CAR: every raw
// BLAKE3 block comes as its Bao encoding (internal/bao), and a file's raw
// leaves are released one verified 16 KiB chunk group at a time, clipped
// to the range, before the block is complete. A group that fails is a
// hash mismatch naming the block, and none of its bytes are released;
// OnBlock and Stats still count whole blocks, each before its last group
// is read, and the group holding the range's last byte waits for the rest
// of its block, so a caller that stops at the range's end has seen OnBlock
// for every block, as with a plain CAR. A single-block file (a raw
// entity root) is released only once whole: its length, which Entity
// reports, is proven only by its last group.
//
// Errors (errors.go): ErrHashMismatch and ErrUnexpectedBlock come as a
// *BlockError naming the CID; ErrTruncated, ErrNotFound (absence proven by
// verified blocks), ErrMalformed, ErrUnsupported, ErrTooLarge, ErrBadRequest.
//
// Specs: https://specs.ipfs.tech/http-gateways/trustless-gateway/,
// https://specs.ipfs.tech/http-gateways/path-gateway/ (entity-bytes),
// https://github.com/ipfs/specs/blob/main/UNIXFS.md.
package verify
