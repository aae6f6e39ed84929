// Package importer turns a file or a directory tree into a UnixFS DAG with
// the settings Verity has decided on, using boxo's importer the way Kubo's
// `ipfs add` does:
//
//   - CIDv1, dag-pb nodes, raw leaves, BLAKE3 (0x1e, 32-byte digests;
//     computed with github.com/zeebo/blake3, see internal/blake3mh);
//   - fixed 256 KiB chunks, balanced layout with 174 links per node
//     (boxo/ipld/unixfs/importer/balanced);
//   - directories as UnixFS directories (boxo/ipld/unixfs/io), switching to a
//     HAMT-sharded directory beyond boxo's default threshold (256 KiB of
//     estimated links, fanout 256);
//   - no modes, no mtimes; entries in byte order of their names.
//
// The same tree gives the same root CID on every run and, for the same
// content, the same CID as
//
//	ipfs add -r --hidden --cid-version=1 --raw-leaves --hash=blake3 --chunker=size-262144
//
// (hidden files are imported: sites need .well-known/) and as the JS
// importer (ipfs-unixfs-importer) with the same settings: interop_test.go
// pins roots produced by both, and testdata/interop/ says how to redo it.
//
// Symbolic links and special files are refused with ErrSymlink /
// ErrSpecialFile rather than followed or stored, so that a deploy never
// depends on what a link points to.
//
// Two goroutines help the one that builds the DAG: a file of more than
// two chunks is read and hashed a few chunks ahead (aheadsplitter.go;
// the builder takes the digests, so CIDs are those of hashing in line),
// and WriteCAR into a file writes the CAR from 1 MiB buffers on a
// goroutine of its own (aheadwriter.go), so a build uses two cores.
//
// Usage:
//
//	root, err := importer.WriteCAR(ctx, "./dist", w, importer.Options{})
//	root, err := importer.Import(ctx, "./dist", sink, importer.Options{})
//
// Native only: it uses boxo.
package importer
