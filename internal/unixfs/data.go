package unixfs

import ()

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
		num, typ, l := consumeTag(b)
		if l < 0 {
			return FSNode{}, malformed("unixfs tag: %v", parseError(l))
		}
		b = b[l:]
		switch {
		case num == 1 && typ == varintType:
			v, l := consumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs Type: %v", parseError(l))
			}
			if v > uint64(THAMTShard) {
				return FSNode{}, malformed("unixfs Type %d", v)
			}
			fs.Type, haveType = DataType(v), true
			b = b[l:]
		case num == 2 && typ == bytesType:
			v, l := consumeBytes(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs Data: %v", parseError(l))
			}
			fs.Data = v
			b = b[l:]
		case num == 3 && typ == varintType:
			v, l := consumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs filesize: %v", parseError(l))
			}
			fs.FileSize, fs.HasFileSize = v, true
			b = b[l:]
		case num == 4 && typ == varintType:
			v, l := consumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs blocksizes: %v", parseError(l))
			}
			if len(fs.BlockSizes) >= MaxBlockSizes {
				return FSNode{}, malformed("too many blocksizes")
			}
			fs.BlockSizes = append(fs.BlockSizes, v)
			b = b[l:]
		case num == 4 && typ == bytesType: // packed
			v, l := consumeBytes(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs blocksizes: %v", parseError(l))
			}
			for len(v) > 0 {
				x, n := consumeVarint(v)
				if n < 0 {
					return FSNode{}, malformed("unixfs blocksizes: %v", parseError(n))
				}
				if len(fs.BlockSizes) >= MaxBlockSizes {
					return FSNode{}, malformed("too many blocksizes")
				}
				fs.BlockSizes = append(fs.BlockSizes, x)
				v = v[n:]
			}
			b = b[l:]
		case num == 5 && typ == varintType:
			v, l := consumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs hashType: %v", parseError(l))
			}
			fs.HashType, fs.HasHashType = v, true
			b = b[l:]
		case num == 6 && typ == varintType:
			v, l := consumeVarint(b)
			if l < 0 {
				return FSNode{}, malformed("unixfs fanout: %v", parseError(l))
			}
			fs.Fanout, fs.HasFanout = v, true
			b = b[l:]
		case num == 7 || num == 8:
			l := consumeFieldValue(num, typ, b)
			if l < 0 {
				return FSNode{}, malformed("unixfs field %d: %v", num, parseError(l))
			}
			b = b[l:]
		default:
			return FSNode{}, malformed("unixfs: unexpected field %d (wire type %d)", int(num), int(typ))
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
	b = appendTag(b, 1, varintType)
	b = appendVarint(b, uint64(fs.Type))
	if fs.Data != nil {
		b = appendTag(b, 2, bytesType)
		b = appendBytes(b, fs.Data)
	}
	if fs.HasFileSize {
		b = appendTag(b, 3, varintType)
		b = appendVarint(b, fs.FileSize)
	}
	for _, s := range fs.BlockSizes {
		b = appendTag(b, 4, varintType)
		b = appendVarint(b, s)
	}
	if fs.HasHashType {
		b = appendTag(b, 5, varintType)
		b = appendVarint(b, fs.HashType)
	}
	if fs.HasFanout {
		b = appendTag(b, 6, varintType)
		b = appendVarint(b, fs.Fanout)
	}
	return b
}
