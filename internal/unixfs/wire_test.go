package unixfs

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

var wireSeeds = [][]byte{
	{}, {0x08}, {0x08, 0x96, 0x01}, {0x12, 0x03, 'a', 'b', 'c'}, {0x12, 0x05, 'a'},
	{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
	{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	{0x00}, {0x07}, {0x0b, 0x08, 0x01, 0x0c}, {0x0b, 0x08, 0x01, 0x14}, {0x0c}, {0x0d, 1, 2, 3, 4}, {0x09, 1},
	{0xf8, 0xff, 0xff, 0xff, 0x7f, 0x00}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x10},
}

// checkWire compares every reader on b with protowire's.
func checkWire(t *testing.T, b []byte) {
	v1, n1 := consumeVarint(b)
	v2, n2 := protowire.ConsumeVarint(b)
	if v1 != v2 || n1 != n2 {
		t.Fatalf("consumeVarint(%x) = %d, %d; protowire %d, %d", b, v1, n1, v2, n2)
	}
	num1, typ1, n1 := consumeTag(b)
	num2, typ2, n2 := protowire.ConsumeTag(b)
	if int32(num1) != int32(num2) || int8(typ1) != int8(typ2) || n1 != n2 {
		t.Fatalf("consumeTag(%x) = %d, %d, %d; protowire %d, %d, %d", b, num1, typ1, n1, num2, typ2, n2)
	}
	if !sameErr(parseError(n1), protowire.ParseError(n2)) {
		t.Fatalf("parseError(%d) = %v; protowire %v", n1, parseError(n1), protowire.ParseError(n2))
	}
	by1, n1 := consumeBytes(b)
	by2, n2 := protowire.ConsumeBytes(b)
	if !bytes.Equal(by1, by2) || n1 != n2 {
		t.Fatalf("consumeBytes(%x) = %x, %d; protowire %x, %d", b, by1, n1, by2, n2)
	}
	if num1 > 0 && len(b) > 0 {
		_, _, tl := consumeTag(b)
		rest := b[tl:]
		if a, w := consumeFieldValue(num1, typ1, rest), protowire.ConsumeFieldValue(num2, typ2, rest); a != w {
			t.Fatalf("consumeFieldValue(%d, %d, %x) = %d; protowire %d", num1, typ1, rest, a, w)
		}
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	// protobuf's errors randomly space with U+00A0 to discourage matching.
	return a.Error() == strings.ReplaceAll(b.Error(), "\u00a0", " ")
}

func TestWireMatchesProtowire(t *testing.T) {
	for _, b := range wireSeeds {
		checkWire(t, b)
	}
	for _, v := range []uint64{0, 1, 127, 128, 300, 1<<32 - 1, 1 << 35, 1<<63 + 5, ^uint64(0)} {
		if got, want := appendVarint([]byte{9}, v), protowire.AppendVarint([]byte{9}, v); !bytes.Equal(got, want) {
			t.Fatalf("appendVarint(%d) = %x; protowire %x", v, got, want)
		}
	}
	for _, num := range []fieldNumber{1, 2, 15, 16, 1<<29 - 1} {
		for _, typ := range []wireType{varintType, bytesType} {
			if got, want := appendTag(nil, num, typ), protowire.AppendTag(nil, protowire.Number(num), protowire.Type(typ)); !bytes.Equal(got, want) {
				t.Fatalf("appendTag(%d, %d) = %x; protowire %x", num, typ, got, want)
			}
		}
	}
	if got, want := appendBytes(nil, []byte("abc")), protowire.AppendBytes(nil, []byte("abc")); !bytes.Equal(got, want) {
		t.Fatalf("appendBytes = %x; protowire %x", got, want)
	}
	if got, want := appendString(nil, "abc"), protowire.AppendString(nil, "abc"); !bytes.Equal(got, want) {
		t.Fatalf("appendString = %x; protowire %x", got, want)
	}
}

func FuzzWireMatchesProtowire(f *testing.F) {
	for _, b := range wireSeeds {
		f.Add(b)
	}
	f.Fuzz(checkWire)
}
