package unixfs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/verity-cdn/verity/internal/cid"
)

func sampleNode(t testing.TB) []byte {
	c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte("leaf"))
	if err != nil {
		t.Fatal(err)
	}
	n := Node{
		Links: []Link{{Hash: c, Name: "a", HasName: true, Tsize: 4, HasTsize: true}, {Hash: c}},
		Data:  EncodeData(FSNode{Type: TFile, HasFileSize: true, FileSize: 8, BlockSizes: []uint64{4, 4}}),
	}
	n.HasData = true
	return EncodeNode(n)
}

func TestNodeRoundTrip(t *testing.T) {
	b := sampleNode(t)
	n, err := DecodeNode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Links) != 2 || n.Links[0].Name != "a" || n.Links[1].HasName || n.Links[0].Tsize != 4 {
		t.Fatalf("%+v", n)
	}
	if !bytes.Equal(EncodeNode(n), b) {
		t.Fatal("re-encoding differs")
	}
	fs, err := DecodeData(n.Data)
	if err != nil || fs.Type != TFile || fs.FileSize != 8 || len(fs.BlockSizes) != 2 {
		t.Fatalf("%+v %v", fs, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := sampleNode(t)
	cases := map[string][]byte{
		"truncated":         good[:len(good)-1],
		"unknown field":     append(bytes.Clone(good), 0x18, 0x01),
		"links after data":  append(bytes.Clone(good), good[:2+int(good[1])]...),
		"link without hash": {0x12, 0x02, 0x18, 0x01},
		"bad link cid":      {0x12, 0x04, 0x0a, 0x02, 0x01, 0x55},
	}
	for name, b := range cases {
		if _, err := DecodeNode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"no type":   {0x10, 0x01},
		"bad type":  {0x08, 0x09},
		"bad field": {0x08, 0x02, 0x48, 0x01},
		"truncated": {0x08},
	} {
		if _, err := DecodeData(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("data %s: err = %v", name, err)
		}
	}
}

func TestHashBits(t *testing.T) {
	hb := &HashBits{b: [8]byte{0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89}}
	for _, step := range []struct{ n, want int }{{4, 0xA}, {8, 0xBC}, {3, 0x6}, {1, 1}} {
		got, err := hb.Next(step.n)
		if err != nil || got != step.want {
			t.Fatalf("Next(%d) = %x, want %x (%v)", step.n, got, step.want, err)
		}
	}
	for i := 0; i < 6; i++ {
		hb.Next(8)
	}
	if _, err := hb.Next(8); err == nil {
		t.Fatal("read past 64 bits")
	}
}
