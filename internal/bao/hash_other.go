//go:build !amd64

package bao

import "github.com/verity-cdn/verity/internal/blake3"

// In the worker's wasm (and on other platforms) chunk groups and parents
// are hashed with the small portable internal/blake3.

// groupCV returns the chaining value of the chunk group g (at most
// GroupSize bytes) whose first chunk is chunk number counter of the block,
// or the block's hash when root (g is then the whole block).
func groupCV(g []byte, counter uint64, root bool) [32]byte {
	if root {
		return blake3.Sum256(g)
	}
	return blake3.ChainingValue(g, counter)
}

// parentCV returns the chaining value of the parent of left and right, or
// the block's hash when root.
func parentCV(left, right *[32]byte, root bool) [32]byte {
	return blake3.Parent(left, right, root)
}
