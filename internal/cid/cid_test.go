package cid

import (
	"bytes"
	"errors"
	"testing"
)

var parseCases = []struct {
	name, in string
	err      error
}{
	{"v0", "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", nil},
	{"v1 dag-pb sha256", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", nil},
	{"v1 raw sha256", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", nil},
	{"v1 raw blake3", "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4", nil},
	{"identity empty", "bafkqaaa", nil},
	{"empty", "", ErrInvalid},
	{"base36", "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8", ErrUnsupported},
	{"upper base32", "BAFYBEIGDYRZT5SFP7UDM7HU76UH7Y26NF3EFUYLQABF3OCLGTQY55FBZDI", ErrUnsupported},
	{"bad base32", "bafy!!", ErrInvalid},
	{"truncated", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbz", ErrInvalid},
	{"bad base58", "Qm0fTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", ErrInvalid},
	{"version 2", "bajkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", ErrUnsupported},
	{"trailing", "bafkqaaaa", ErrInvalid},
	{"unused bits set", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5f", ErrInvalid},
	{"mixed case", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzDi", ErrInvalid},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Parse(%q) err = %v, want %v", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := c.String(); got != tc.in {
				t.Fatalf("String() = %q, want %q", got, tc.in)
			}
			d, n, err := Decode(c.Bytes())
			if err != nil || n != len(c.Bytes()) || !d.Equal(c) {
				t.Fatalf("Decode(Bytes()) = %v, %d, %v", d, n, err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	data := []byte("hello verity")
	for _, h := range []uint64{HashBLAKE3, HashSHA256, HashIdentity} {
		c, err := Sum(CodecRaw, h, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(data); err != nil {
			t.Fatalf("hash 0x%x: %v", h, err)
		}
		bad := bytes.Clone(data)
		bad[0] ^= 1
		if err := c.Verify(bad); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("hash 0x%x: tampered data err = %v", h, err)
		}
		p, err := Parse(c.String())
		if err != nil || !p.Equal(c) {
			t.Fatalf("round trip %s: %v", c, err)
		}
	}
	// BLAKE3 with a non-default digest length (extendable output).
	c, _ := Sum(CodecRaw, HashBLAKE3, data)
	long := CID{Version: 1, Codec: CodecRaw, HashCode: HashBLAKE3, Digest: make([]byte, 64)}
	if err := long.Verify(data); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("zero 64-byte digest: %v", err)
	}
	short := CID{Version: 1, Codec: CodecRaw, HashCode: HashBLAKE3, Digest: c.Digest[:16]}
	if err := short.Verify(data); err != nil {
		t.Fatalf("16-byte BLAKE3 prefix: %v", err)
	}
	unk := CID{Version: 1, Codec: CodecRaw, HashCode: 0x13, Digest: make([]byte, 64)}
	var ue *UnknownHashError
	if err := unk.Verify(data); !errors.As(err, &ue) || !errors.Is(err, ErrUnknownHash) || ue.Code != 0x13 {
		t.Fatalf("unknown hash err = %v", err)
	}
}

func TestDecodeLimits(t *testing.T) {
	cases := map[string][]byte{
		"empty":          {},
		"long varint":    {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"non-minimal":    {0x81, 0x00},
		"huge digest":    {0x01, 0x55, 0x1e, 0x81, 0x01},
		"short digest":   {0x01, 0x55, 0x1e, 0x20, 0x00},
		"v0 truncated":   {0x12, 0x20, 0x01},
		"explicit v0":    {0x00, 0x70, 0x12, 0x00},
		"truncated vint": {0x01, 0x80},
	}
	for name, b := range cases {
		if _, _, err := Decode(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestBase58RoundTrip(t *testing.T) {
	for _, b := range [][]byte{{}, {0}, {0, 0, 1}, {255, 254, 0, 7}, bytes.Repeat([]byte{0x12}, 40)} {
		s := encodeBase58(b)
		got, err := decodeBase58(s)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%x -> %q -> %x, %v", b, s, got, err)
		}
	}
}
