package unixfs

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is the UnixFS node type.
type DataType int32

// UnixFS node types.
const (
	TRaw       DataType = 0
	TDirectory DataType = 1
	TFile      DataType = 2
	TMetadata  DataType = 3
	TSymlink   DataType = 4
	THAMTShard DataType = 5
)

func (t DataType) String() string {
	switch t {
	case TRaw:
		return "raw"
	case TDirectory:
		return "directory"
	case TFile:
		return "file"
	case TMetadata:
		return "metadata"
	case TSymlink:
		return "symlink"
	case THAMTShard:
		return "hamt-shard"
	}
	return "unknown"
}

// HashMurmur3 is the multihash code of murmur3-x64-64, the HAMT hash.
const HashMurmur3 = 0x22

// MaxBlockSizes bounds the blocksizes list of one node.
const MaxBlockSizes = 1 << 16

// FSNode is a decoded UnixFS Data message.
type FSNode struct {
	Type        DataType
	Data        []byte
	FileSize    uint64
	HasFileSize bool
	BlockSizes  []uint64
	HashType    uint64
	HasHashType bool
	Fanout      uint64
	HasFanout   bool
}

// DecodeData decodes the UnixFS Data message carried in a dag-pb node's Data.
// Mode (7) and mtime (8) are accepted and ignored.
func DecodeData(b []byte) (FSNode, error) {
	var fs FSNode
	var haveType bool
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return FSNode{}, malformed("unixfs tag: %v", protowire.ParseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs Type: %v", protowire.ParseError(l))
			}
			if v > uint64(THAMTShard) {
				return FSNode{}, malformed("unixfs Type %d", v)
			}
			fs.Type, haveType = DataType(v), true
			b = b[l:]
		case num == 2 && typ == protowire.BytesType:
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs Data: %v", protowire.ParseError(l))
			}
			fs.Data = v
			b = b[l:]
		case num == 3 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs filesize: %v", protowire.ParseError(l))
			}
			fs.FileSize, fs.HasFileSize = v, true
			b = b[l:]
		case num == 4 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs blocksizes: %v", protowire.ParseError(l))
			}
			if len(fs.BlockSizes) >= MaxBlockSizes {
				return FSNode{}, malformed("too many blocksizes")
			}
			fs.BlockSizes = append(fs.BlockSizes, v)
			b = b[l:]
		case num == 4 && typ == protowire.BytesType: // packed
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs blocksizes: %v", protowire.ParseError(l))
			}
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return FSNode{}, malformed("unixfs blocksizes: %v", protowire.ParseError(n))
				}
				if len(fs.BlockSizes) >= MaxBlockSizes {
					return FSNode{}, malformed("too many blocksizes")
				}
				fs.BlockSizes = append(fs.BlockSizes, x)
				v = v[n:]
			}
			b = b[l:]
		case num == 5 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs hashType: %v", protowire.ParseError(l))
			}
			fs.HashType, fs.HasHashType = v, true
			b = b[l:]
		case num == 6 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs fanout: %v", protowire.ParseError(l))
			}
			fs.Fanout, fs.HasFanout = v, true
			b = b[l:]
		case num == 7 || num == 8:
			l := protowire.ConsumeFieldValue(num, typ, b)
			if l < 0 {
				return FSNode{}, malformed("unixfs field %d: %v", num, protowire.ParseError(l))
			}
			b = b[l:]
		default:
			return FSNode{}, malformed("unixfs: unexpected field %d (wire type %d)", num, typ)
		}
	}
	if !haveType {
		return FSNode{}, malformed("unixfs: no Type")
	}
	return fs, nil
}

// EncodeData encodes fs (used by tests and tools building DAGs by hand).
func EncodeData(fs FSNode) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(fs.Type))
	if fs.Data != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, fs.Data)
	}
	if fs.HasFileSize {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, fs.FileSize)
	}
	for _, s := range fs.BlockSizes {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, s)
	}
	if fs.HasHashType {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, fs.HashType)
	}
	if fs.HasFanout {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, fs.Fanout)
	}
	return b
}
