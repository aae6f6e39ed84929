// Package blake3mh registers github.com/zeebo/blake3 as go-multihash's BLAKE3
// (0x1e) implementation, replacing lukechampine.com/blake3, which
// go-multihash registers by default. Digests are identical; zeebo's is
// faster. Import it for its side effect:
//
//	import _ "github.com/verity-cdn/verity/internal/blake3mh"
//
// Native only: it pulls in go-multihash.
package blake3mh

import (
	"hash"

	mhcore "github.com/multiformats/go-multihash/core"
	// Registered first so that the registration below replaces it.
	_ "github.com/multiformats/go-multihash/register/blake3"
	"github.com/zeebo/blake3"
)

// Digest lengths accepted, as go-multihash's own registration.
const (
	DefaultSize = 32
	MaxSize     = 128
)

func init() {
	mhcore.RegisterVariableSize(mhcore.BLAKE3, New)
}

// New returns a BLAKE3 hash.Hash producing size bytes (-1: 32), or false for
// a size outside 1..MaxSize.
func New(size int) (hash.Hash, bool) {
	if size == -1 {
		size = DefaultSize
	} else if size <= 0 || size > MaxSize {
		return nil, false
	}
	return &hasher{Hasher: blake3.New(), size: size}, true
}

type hasher struct {
	*blake3.Hasher
	size int
}

func (h *hasher) Size() int { return h.size }

func (h *hasher) Sum(b []byte) []byte {
	if h.size == 32 {
		return h.Hasher.Sum(b)
	}
	out := make([]byte, h.size)
	_, _ = h.Hasher.Digest().Read(out)
	return append(b, out...)
}
