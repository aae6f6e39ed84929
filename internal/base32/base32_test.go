package base32

import (
	"bytes"
	stdbase32 "encoding/base32"
	"errors"
	"strings"
	"testing"
)

var std = stdbase32.NewEncoding(alphabet).WithPadding(stdbase32.NoPadding)

// Every length from 0 to 70: the encoding is encoding/base32's, and
// decodes back.
func TestRoundTripAsEncodingBase32(t *testing.T) {
	for n := 0; n <= 70; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*151 + n*7)
		}
		s := Encode(b)
		if want := std.EncodeToString(b); s != want {
			t.Fatalf("%d bytes: %q, want %q", n, s, want)
		}
		if len(s) != EncodedLen(n) {
			t.Fatalf("%d bytes: length %d, EncodedLen %d", n, len(s), EncodedLen(n))
		}
		got, err := Decode(s)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%d bytes: Decode = %x, %v", n, got, err)
		}
	}
}

// Only the form Encode writes is accepted: another string for the same
// bytes (upper case, a last character with its unused bits set, padding)
// would be a second name for them.
func TestDecodeRefusesOtherForms(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5}, 32)
	canon := Encode(key)
	last := canon[len(canon)-1]
	flipped := canon[:len(canon)-1] + string(alphabet[strings.IndexByte(alphabet, last)|1])
	if flipped == canon {
		t.Fatal("the test's last character has its unused bit set already")
	}
	if got, err := std.DecodeString(flipped); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("encoding/base32 reads %q as %x, %v: the test needs a second name for the key", flipped, got, err)
	}
	for _, tc := range []struct {
		name, s string
		at      int64
	}{
		{"upper case", strings.ToUpper(canon), 0},
		{"unused bits set", flipped, int64(len(canon) - 1)},
		{"padding", canon + "====", int64(len(canon))},
		{"one character left over", "aaaaaaaaa", 9},
		{"three left over", "aaa", 3},
		{"six left over", "aaaaaa", 6},
		{"not in the alphabet", "ab1c", 2},
		{"a byte past ASCII", "ab\xffc", 2},
	} {
		_, err := Decode(tc.s)
		var ce CorruptInputError
		if !errors.As(err, &ce) || int64(ce) != tc.at {
			t.Errorf("%s: %v, want a CorruptInputError at %d", tc.name, err, tc.at)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("")
	f.Add("ae")
	f.Add("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Decode(s)
		if err != nil {
			return
		}
		if Encode(b) != s {
			t.Fatalf("%q decodes to %x, which encodes to %q", s, b, Encode(b))
		}
		if want, err := std.DecodeString(s); err != nil || !bytes.Equal(want, b) {
			t.Fatalf("%q: %x, encoding/base32 %x, %v", s, b, want, err)
		}
	})
}
