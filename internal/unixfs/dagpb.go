package unixfs

import (
	"google.golang.org/protobuf/encoding/protowire"

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
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return Node{}, malformed("dag-pb tag: %v", protowire.ParseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			if n.HasData {
				return Node{}, malformed("dag-pb: duplicate Data")
			}
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return Node{}, malformed("dag-pb Data: %v", protowire.ParseError(l))
			}
			n.Data, n.HasData = v, true
			b = b[l:]
		case num == 2 && typ == protowire.BytesType:
			if n.HasData {
				return Node{}, malformed("dag-pb: Links after Data")
			}
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return Node{}, malformed("dag-pb Links: %v", protowire.ParseError(l))
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
			return Node{}, malformed("dag-pb: unexpected field %d (wire type %d)", num, typ)
		}
	}
	return n, nil
}

func decodeLink(b []byte) (Link, error) {
	var lk Link
	var haveHash bool
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return Link{}, malformed("dag-pb link tag: %v", protowire.ParseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			if haveHash {
				return Link{}, malformed("dag-pb link: duplicate Hash")
			}
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Hash: %v", protowire.ParseError(l))
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
		case num == 2 && typ == protowire.BytesType:
			if lk.HasName {
				return Link{}, malformed("dag-pb link: duplicate Name")
			}
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Name: %v", protowire.ParseError(l))
			}
			lk.Name, lk.HasName = string(v), true
			b = b[l:]
		case num == 3 && typ == protowire.VarintType:
			if lk.HasTsize {
				return Link{}, malformed("dag-pb link: duplicate Tsize")
			}
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return Link{}, malformed("dag-pb link Tsize: %v", protowire.ParseError(l))
			}
			lk.Tsize, lk.HasTsize = v, true
			b = b[l:]
		default:
			return Link{}, malformed("dag-pb link: unexpected field %d (wire type %d)", num, typ)
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
		lb = protowire.AppendTag(lb, 1, protowire.BytesType)
		lb = protowire.AppendBytes(lb, lk.Hash.Bytes())
		if lk.HasName {
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, lk.Name)
		}
		if lk.HasTsize {
			lb = protowire.AppendTag(lb, 3, protowire.VarintType)
			lb = protowire.AppendVarint(lb, lk.Tsize)
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, lb)
	}
	if n.HasData {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, n.Data)
	}
	return b
}
