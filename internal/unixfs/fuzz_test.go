package unixfs

import "testing"

func FuzzDecodeNode(f *testing.F) {
	f.Add(sampleNode(f))
	f.Add([]byte{0x12, 0x02, 0x18, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNode(b)
		if err != nil {
			return
		}
		again, err := DecodeNode(EncodeNode(n))
		if err != nil || len(again.Links) != len(n.Links) || again.HasData != n.HasData {
			t.Fatalf("re-decode: %v", err)
		}
		if n.HasData {
			if fs, err := DecodeData(n.Data); err == nil && fs.Type == THAMTShard {
				if sh, err := NewShard(n, fs); err == nil {
					_, _, _ = sh.Lookup("x", NewHashBits("x"))
				}
			}
		}
	})
}

func FuzzDecodeData(f *testing.F) {
	f.Add(EncodeData(FSNode{Type: TFile, HasFileSize: true, FileSize: 3, BlockSizes: []uint64{1, 2}}))
	f.Add(EncodeData(FSNode{Type: THAMTShard, Data: []byte{1}, HasHashType: true, HashType: HashMurmur3, HasFanout: true, Fanout: 256}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := DecodeData(b)
		if err != nil {
			return
		}
		again, err := DecodeData(EncodeData(fs))
		if err != nil || again.Type != fs.Type || again.FileSize != fs.FileSize || len(again.BlockSizes) != len(fs.BlockSizes) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
