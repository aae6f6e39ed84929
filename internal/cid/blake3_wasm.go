package cid

import "github.com/verity-cdn/verity/internal/blake3"

// The worker's wasm hashes with the small internal/blake3: as fast there as
// github.com/zeebo/blake3's portable code, without linking klauspost/cpuid.

func blake3Sum256(data []byte) [32]byte { return blake3.Sum256(data) }

// blake3Sum fills out with the BLAKE3 extended output of data.
func blake3Sum(out, data []byte) { blake3.Sum(out, data) }
