package cid

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("String(Parse(%q)) = %q", s, c.String())
		}
		d, n, err := Decode(c.Bytes())
		if err != nil || n != len(c.Bytes()) || !d.Equal(c) {
			t.Fatalf("binary round trip of %q failed: %v", s, err)
		}
		_ = c.Verify([]byte("x"))
	})
}

func FuzzDecode(f *testing.F) {
	for _, tc := range parseCases {
		if c, err := Parse(tc.in); err == nil {
			f.Add(c.Bytes())
		}
	}
	f.Add([]byte{0x01, 0x55, 0x1e, 0x81, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := Decode(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Decode used %d of %d bytes", n, len(b))
		}
		if !bytes.Equal(c.Bytes(), b[:n]) {
			t.Fatalf("Bytes() = %x, input %x", c.Bytes(), b[:n])
		}
		p, err := Parse(c.String())
		if err != nil || !p.Equal(c) {
			t.Fatalf("text round trip of %x: %v", b[:n], err)
		}
	})
}
