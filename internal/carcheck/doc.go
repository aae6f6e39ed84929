// Package carcheck verifies that a CARv1 stream is exactly one complete
// UnixFS DAG, as the gateway requires of a deploy:
//
//   - the header names exactly one root;
//   - every block's bytes hash to its CID (BLAKE3, sha2-256 or identity);
//   - blocks are raw (0x55) or dag-pb (0x70), and dag-pb blocks decode;
//   - every block linked from the root is present (nothing missing);
//   - every block is reachable from the root (nothing extra);
//   - no block appears twice (a CAR repeating its blocks costs every node
//     that fetches it, and the gateway that keeps it, for nothing);
//   - the root is a UnixFS directory, HAMT shard or file (or a raw leaf,
//     a one-block file).
//
// Usage:
//
//	res, err := carcheck.Check(f, carcheck.Config{})
//	var ce *carcheck.Error
//	if errors.As(err, &ce) {
//		fmt.Println(ce.Code, ce.CID, ce.Detail) // e.g. "missing_block", "bafk…"
//	}
//	fmt.Println(res.Root, res.Blocks, res.Bytes)
//
// A reader that stores the blocks as it reads them (the node pinning a
// CAR) checks them with a Checker instead, in the same pass:
//
//	ch, err := carcheck.NewChecker(roots, carcheck.Config{})
//	for each section { err = ch.Add(c, data) }
//	res, err := ch.Finish() // nothing missing, nothing extra
//
// The stream is read once; memory holds the links of each block (not the
// block bytes), so a 1 GiB site of 256 KiB chunks costs a few hundred KiB.
//
// Errors are *Error values with a stable Code (CodeMalformed,
// CodeRoots, CodeHashMismatch, CodeUnsupported, CodeMissingBlock,
// CodeExtraBlock, CodeDuplicate, CodeBadRoot, CodeTooLarge) matching
// ErrInvalid.
package carcheck
