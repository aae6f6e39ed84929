//go:build !wasm

package cid

import (
	"crypto/sha256"

	"github.com/zeebo/blake3"
)

// Natively the hashes use assembly (zeebo/blake3: SSE4.1/AVX2).

func blake3Sum256(data []byte) [32]byte { return blake3.Sum256(data) }

// blake3Sum fills out with the BLAKE3 extended output of data.
func blake3Sum(out, data []byte) {
	h := blake3.New()
	_, _ = h.Write(data)
	_, _ = h.Digest().Read(out)
}

func sha256Sum(data []byte) [32]byte { return sha256.Sum256(data) }
