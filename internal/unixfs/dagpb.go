package unixfs

import (
	"github.com/verity-cdn/verity/internal/cid"
)

// MaxLinks bounds the links of one node (a 2 MiB block cannot hold more
// than this many well-formed links anyway).
const MaxLinks = 1 << 16

// Link is a dag-pb PBLink.
type Link struct {
	Hash     cid.CID
	Name     string
	HasName  bool
	Tsize    uint64
	HasTsize bool
}

// Node is a dag-pb PBNode.
type Node struct {
	Links   []Link
	Data    []byte
	HasData bool
}

// DecodeNode decodes a dag-pb block. Unknown fields, wrong wire types and
// repeated singular fields are rejected, as go-codec-dagpb does.
func DecodeNode(b []byte) (Node, error) {
	var n Node
	for len(b) > 0 {
		num, typ, l := consumeTag(b)
		if l < 0 {
			return Node{}, malformed("dag-pb tag: %v", parseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == bytesType:
			if n.HasData {
				return Node{}, malformed("dag-pb: duplicate Data")
			}
			v, l := consumeBytes(b)
			if l < 0 {
				return Node{}, malformed("dag-pb Data: %v", parseError(l))
			}
			n.Data, n.HasData = v, true
			b = b[l:]
		case num == 2 && typ == bytesType:
			if n.HasData {
				return Node{}, malformed("dag-pb: Links after Data")
			}
			v, l := consumeBytes(b)
			if l < 0 {
				return Node{}, malformed("dag-pb Links: %v", parseError(l))
			}
			if len(n.Links) >= MaxLinks {
				return Node{}, malformed("dag-pb: more than %d links", MaxLinks)
			}
			lk, err := decodeLink(v)
			if err != nil {
				return Node{}, err
			}
			n.Links = append(n.Links, lk)
			b = b[l:]
		default:
			return Node{}, malformed("dag-pb: unexpected field %d (wire type %d)", int(num), int(typ))
		}
	}
	return n, nil
}

func decodeLink(b []byte) (Link, error) {
	var lk Link
	var haveHash bool
	for len(b) > 0 {
		num, typ, l := consumeTag(b)
		if l < 0 {
			return Link{}, malformed("dag-pb link tag: %v", parseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == bytesType:
			if haveHash {
				return Link{}, malformed("dag-pb link: duplicate Hash")
			}
			v, l := consumeBytes(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Hash: %v", parseError(l))
			}
			c, n, err := cid.Decode(v)
			if err != nil {
				return Link{}, malformed("dag-pb link Hash: %v", err)
			}
			if n != len(v) {
				return Link{}, malformed("dag-pb link Hash: trailing bytes")
			}
			lk.Hash, haveHash = c, true
			b = b[l:]
		case num == 2 && typ == bytesType:
			if lk.HasName {
				return Link{}, malformed("dag-pb link: duplicate Name")
			}
			v, l := consumeBytes(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Name: %v", parseError(l))
			}
			lk.Name, lk.HasName = string(v), true
			b = b[l:]
		case num == 3 && typ == varintType:
			if lk.HasTsize {
				return Link{}, malformed("dag-pb link: duplicate Tsize")
			}
			v, l := consumeVarint(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Tsize: %v", parseError(l))
			}
			lk.Tsize, lk.HasTsize = v, true
			b = b[l:]
		default:
			return Link{}, malformed("dag-pb link: unexpected field %d (wire type %d)", int(num), int(typ))
		}
	}
	if !haveHash {
		return Link{}, malformed("dag-pb link without Hash")
	}
	return lk, nil
}

// EncodeNode encodes n in canonical dag-pb form (links, then data).
func EncodeNode(n Node) []byte {
	var b []byte
	for _, lk := range n.Links {
		var lb []byte
		lb = appendTag(lb, 1, bytesType)
		lb = appendBytes(lb, lk.Hash.Bytes())
		if lk.HasName {
			lb = appendTag(lb, 2, bytesType)
			lb = appendString(lb, lk.Name)
		}
		if lk.HasTsize {
			lb = appendTag(lb, 3, varintType)
			lb = appendVarint(lb, lk.Tsize)
		}
		b = appendTag(b, 2, bytesType)
		b = appendBytes(b, lb)
	}
	if n.HasData {
		b = appendTag(b, 1, bytesType)
		b = appendBytes(b, n.Data)
	}
	return b
}
