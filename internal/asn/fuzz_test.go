package asn_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/asn"
)

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n",
		"198.51.100.0\t198.51.100.99\t64497\tDE\tEXAMPLE\n",
		"2001:db8::/32 64496 NL\n192.0.2.0/24 AS64501\n",
		"# c\n\n::\tffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\t1\n",
		"192.0.2.9\t192.0.2.8\t1\n",
		"garbage",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := asn.Load(strings.NewReader(s))
		if err != nil {
			return
		}
		tb.Lookup(netip.MustParseAddr("192.0.2.1"))
		tb.Lookup(netip.MustParseAddr("2001:db8::1"))
	})
}

// FuzzRangeToPrefixes checks that the prefixes cover exactly [start, end]:
// contiguous, in order, starting at start and ending at end.
func FuzzRangeToPrefixes(f *testing.F) {
	f.Add([]byte{198, 51, 100, 0}, []byte{198, 51, 100, 99})
	f.Add([]byte{0, 0, 0, 0}, []byte{255, 255, 255, 255})
	f.Add(make([]byte, 16), []byte(strings.Repeat("\xff", 16)))
	f.Add(make([]byte, 16), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		start, ok1 := netip.AddrFromSlice(a)
		end, ok2 := netip.AddrFromSlice(b)
		if !ok1 || !ok2 {
			return
		}
		start, end = start.Unmap(), end.Unmap()
		ps, err := asn.RangeToPrefixes(start, end)
		if start.Is4() != end.Is4() || end.Less(start) {
			if err == nil {
				t.Fatal("accepted an invalid range")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 || len(ps) > 2*start.BitLen() {
			t.Fatalf("%d prefixes", len(ps))
		}
		want := start
		for i, p := range ps {
			if p.Addr() != want || p.Masked() != p {
				t.Fatalf("prefix %d = %s, want start %s, masked", i, p, want)
			}
			last := lastAddr(p)
			if i == len(ps)-1 {
				if last != end {
					t.Fatalf("ends at %s, want %s", last, end)
				}
			} else {
				want = last.Next()
			}
		}
	})
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
