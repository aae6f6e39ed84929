package unixfs

import (
	"math/bits"

	"github.com/spaolacci/murmur3"

	"github.com/verity-cdn/verity/internal/errfmt"
)

// MaxFanout is the widest HAMT shard accepted (as go-unixfsnode).
const MaxFanout = 1024

// HashBits yields successive groups of bits of a HAMT key hash, most
// significant first.
type HashBits struct {
	b        [8]byte
	consumed int
}

// NewHashBits hashes key the way boxo's HAMT does: the first 64 bits of
// murmur3 x64_128 with seed 0, big-endian.
func NewHashBits(key string) *HashBits {
	h1, _ := murmur3.Sum128([]byte(key))
	hb := &HashBits{}
	for i := 0; i < 8; i++ {
		hb.b[i] = byte(h1 >> (56 - 8*i))
	}
	return hb
}

// Next returns the next n bits as an integer.
func (hb *HashBits) Next(n int) (int, error) {
	if n <= 0 || hb.consumed+n > 64 {
		return 0, errfmt.Errorf("%w: HAMT deeper than the key hash", ErrMalformed)
	}
	v := uint64(hb.b[0])<<56 | uint64(hb.b[1])<<48 | uint64(hb.b[2])<<40 | uint64(hb.b[3])<<32 |
		uint64(hb.b[4])<<24 | uint64(hb.b[5])<<16 | uint64(hb.b[6])<<8 | uint64(hb.b[7])
	out := int((v << uint(hb.consumed)) >> uint(64-n))
	hb.consumed += n
	return out, nil
}

// Shard is a decoded HAMT shard node.
type Shard struct {
	node   Node
	fanout int
	log2   int
	padLen int
	bitmap []byte // big-endian, fanout/8 bytes
}

// NewShard checks a HAMT shard node as go-unixfsnode does: murmur3 hash type,
// a power-of-two fanout ≤ MaxFanout, and a bitfield that fits the fanout with
// one link per set bit.
func NewShard(n Node, fs FSNode) (*Shard, error) {
	if fs.Type != THAMTShard {
		return nil, malformed("not a HAMT shard")
	}
	if !fs.HasHashType || fs.HashType != HashMurmur3 {
		return nil, errfmt.Errorf("%w: HAMT hash type 0x%x", ErrUnsupported, fs.HashType)
	}
	if !fs.HasFanout || fs.Fanout == 0 || fs.Fanout&(fs.Fanout-1) != 0 {
		return nil, malformed("HAMT fanout %d", fs.Fanout)
	}
	if fs.Fanout > MaxFanout || fs.Fanout < 8 {
		return nil, errfmt.Errorf("%w: HAMT fanout %d", ErrUnsupported, fs.Fanout)
	}
	if fs.Data == nil {
		return nil, malformed("HAMT without bitfield")
	}
	fanout := int(fs.Fanout)
	size := fanout / 8
	if len(fs.Data) > size {
		return nil, malformed("HAMT bitfield of %d bytes for fanout %d", len(fs.Data), fanout)
	}
	bm := make([]byte, size)
	copy(bm[size-len(fs.Data):], fs.Data)
	ones := 0
	for _, b := range bm {
		ones += bits.OnesCount8(b)
	}
	if ones != len(n.Links) {
		return nil, malformed("HAMT bitfield has %d bits set for %d links", ones, len(n.Links))
	}
	return &Shard{
		node:   n,
		fanout: fanout,
		log2:   bits.TrailingZeros(uint(fanout)),
		padLen: len(errfmt.Sprintf("%X", fanout-1)),
		bitmap: bm,
	}, nil
}

// Fanout returns the shard's width.
func (s *Shard) Fanout() int { return s.fanout }

func (s *Shard) bit(i int) bool {
	return s.bitmap[len(s.bitmap)-1-i/8]>>(uint(i)%8)&1 != 0
}

func (s *Shard) onesBefore(i int) int {
	idx := len(s.bitmap) - 1 - i/8
	cnt := bits.OnesCount8(s.bitmap[idx] << (8 - uint(i)%8))
	for _, b := range s.bitmap[idx+1:] {
		cnt += bits.OnesCount8(b)
	}
	return cnt
}

// LookupResult is the outcome of one step of a HAMT lookup.
type LookupResult int

// Lookup outcomes.
const (
	NotFound LookupResult = iota // the key is proven absent
	Found                        // the returned link is the entry
	Child                        // descend into the returned link's shard
)

// Lookup performs one level of a lookup for key, consuming bits from hv. For
// Child, call Lookup on the child shard with the same hv.
func (s *Shard) Lookup(key string, hv *HashBits) (LookupResult, Link, error) {
	idx, err := hv.Next(s.log2)
	if err != nil {
		return NotFound, Link{}, err
	}
	if !s.bit(idx) {
		return NotFound, Link{}, nil
	}
	lk := s.node.Links[s.onesBefore(idx)]
	if !lk.HasName || len(lk.Name) < s.padLen {
		return NotFound, Link{}, malformed("HAMT link name %q", lk.Name)
	}
	if want := errfmt.Sprintf("%0*X", s.padLen, idx); lk.Name[:s.padLen] != want {
		return NotFound, Link{}, malformed("HAMT link %q in slot %s", lk.Name, want)
	}
	if len(lk.Name) == s.padLen {
		return Child, lk, nil
	}
	if lk.Name[s.padLen:] == key {
		return Found, lk, nil
	}
	return NotFound, Link{}, nil
}

// LookupDir finds name in a basic (non-sharded) directory node: the first
// link with that name, as go-unixfsnode does.
func LookupDir(n Node, name string) (Link, bool) {
	for _, lk := range n.Links {
		if lk.HasName && lk.Name == name {
			return lk, true
		}
	}
	return Link{}, false
}

// IsShardLink reports whether lk (a link of this shard) points to a child
// shard rather than an entry: its name is exactly the padded slot index.
func (s *Shard) IsShardLink(lk Link) bool { return len(lk.Name) == s.padLen }
