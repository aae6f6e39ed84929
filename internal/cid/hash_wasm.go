package cid

import (
	"github.com/verity-cdn/verity/internal/blake3"
	"github.com/verity-cdn/verity/internal/sha256"
)

// The worker's wasm hashes with small portable implementations, as fast
// there as the usual ones (which have no wasm assembly either) and much
// smaller: github.com/zeebo/blake3 links github.com/klauspost/cpuid, and
// crypto/sha256 the FIPS 140 module's self-tests.

func blake3Sum256(data []byte) [32]byte { return blake3.Sum256(data) }

// blake3Sum fills out with the BLAKE3 extended output of data.
func blake3Sum(out, data []byte) { blake3.Sum(out, data) }

func sha256Sum(data []byte) [32]byte { return sha256.Sum256(data) }
