package asn_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/asn"
)

var (
	A = netip.MustParseAddr
	P = netip.MustParsePrefix
)

func TestRangeToPrefixes(t *testing.T) {
	cases := []struct {
		start, end string
		want       []string
	}{
		{"192.0.2.0", "192.0.2.255", []string{"192.0.2.0/24"}},
		{"192.0.2.7", "192.0.2.7", []string{"192.0.2.7/32"}},
		{"198.51.100.0", "198.51.100.99", []string{"198.51.100.0/26", "198.51.100.64/27", "198.51.100.96/30"}},
		{"10.0.0.1", "10.0.0.6", []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}},
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"255.255.255.254", "255.255.255.255", []string{"255.255.255.254/31"}},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"::/0"}},
		{"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", []string{"2001:db8::/32"}},
		{"2001:db8::1", "2001:db8::2", []string{"2001:db8::1/128", "2001:db8::2/128"}},
		{"2001:db8::", "2001:db8:0:1::", []string{"2001:db8::/64", "2001:db8:0:1::/128"}},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"}},
		{"::ffff:192.0.2.0", "::ffff:192.0.2.127", []string{"192.0.2.0/25"}},
	}
	for _, c := range cases {
		t.Run(c.start+"-"+c.end, func(t *testing.T) {
			got, err := asn.RangeToPrefixes(A(c.start), A(c.end))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if !slices.Equal(gs, c.want) {
				t.Fatalf("got %v, want %v", gs, c.want)
			}
		})
	}
	for _, bad := range [][2]string{{"192.0.2.9", "192.0.2.8"}, {"192.0.2.0", "2001:db8::"}, {"2001:db8::2", "2001:db8::1"}} {
		if _, err := asn.RangeToPrefixes(A(bad[0]), A(bad[1])); !errors.Is(err, asn.ErrRange) {
			t.Errorf("%v: err = %v, want ErrRange", bad, err)
		}
	}
}

func TestLoadSampleRanges(t *testing.T) {
	tb, err := asn.LoadFile("testdata/sample-ip2asn.tsv")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip      string
		asn     uint32
		country string
		prefix  string
	}{
		{"192.0.2.1", 64496, "NL", "192.0.2.0/24"},
		{"198.51.100.99", 64497, "DE", "198.51.100.96/30"},
		{"198.51.100.100", 64498, "DE", "198.51.100.100/30"},
		{"203.0.113.200", 64500, "US", "203.0.113.128/25"},
		{"127.0.0.1", 64511, "ZZ", "127.0.0.0/8"},
		{"::ffff:192.0.2.1", 64496, "NL", "192.0.2.0/24"},
		{"2001:db8:0:1::5", 64496, "NL", "2001:db8::/32"},
		{"2001:db8:1::5", 64497, "DE", "2001:db8:1::/48"},
		{"::1", 64511, "ZZ", "::1/128"},
	}
	for _, c := range cases {
		info, ok := tb.Lookup(A(c.ip))
		if !ok || info.ASN != c.asn || info.Country != c.country {
			t.Errorf("Lookup(%s) = %+v %v, want AS%d %s", c.ip, info, ok, c.asn, c.country)
		}
		p, _, ok := tb.LookupPrefix(A(c.ip))
		if !ok || p.String() != c.prefix {
			t.Errorf("LookupPrefix(%s) = %s, want %s", c.ip, p, c.prefix)
		}
	}
	for _, ip := range []string{"1.0.0.1", "8.8.8.8", "2001:db9::1"} {
		if info, ok := tb.Lookup(A(ip)); ok {
			t.Errorf("Lookup(%s) = %+v, want no match", ip, info)
		}
	}
	if got := tb.Name(64497); got != "EXAMPLE-FRA" {
		t.Errorf("Name(64497) = %q", got)
	}
}

func TestLoadSamplePrefixes(t *testing.T) {
	tb, err := asn.LoadFile("testdata/sample-prefixes.txt")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 6 {
		t.Errorf("Len = %d, want 6", tb.Len())
	}
	for ip, want := range map[string]uint32{
		"192.0.2.1":     64496,
		"192.0.2.200":   64501, // the more specific /25 wins
		"2001:db8:2::9": 64502,
		"2001:db8:3::9": 64496,
	} {
		if got := tb.ASN(A(ip)); got != want {
			t.Errorf("ASN(%s) = %d, want %d", ip, got, want)
		}
	}
	if info, _ := tb.Lookup(A("192.0.2.200")); info.Country != "BE" {
		t.Errorf("country = %q", info.Country)
	}
}

func TestLoadGzipAndMixed(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("203.0.113.0/24 AS64499 us\n2001:db8::\t2001:db8::ff\t64496\tNL\tEXAMPLE AMS with spaces\r\n\n# comment\n"))
	zw.Close()
	tb, err := asn.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := tb.Lookup(A("203.0.113.9")); info.ASN != 64499 || info.Country != "US" {
		t.Errorf("got %+v", info)
	}
	if got := tb.ASN(A("2001:db8::80")); got != 64496 {
		t.Errorf("ASN = %d", got)
	}
	if got := tb.Name(64496); got != "EXAMPLE AMS with spaces" {
		t.Errorf("Name = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		in   string
		line int
		err  error
	}{
		{"192.0.2.0/24\n", 1, asn.ErrSyntax},
		{"# ok\n192.0.2.0/33 1\n", 2, asn.ErrSyntax},
		{"192.0.2.0/24 ASx\n", 1, asn.ErrSyntax},
		{"192.0.2.0/24 4294967296\n", 1, asn.ErrSyntax},
		{"192.0.2.0/24 1 NL extra\n", 1, asn.ErrSyntax},
		{"192.0.2.9\t192.0.2.8\t1\tNL\tx\n", 1, asn.ErrRange},
		{"192.0.2.0\t2001:db8::\t1\tNL\tx\n", 1, asn.ErrRange},
		{"192.0.2.0\tnope\t1\n", 1, asn.ErrSyntax},
		{"fe80::1%eth0\tfe80::2\t1\n", 1, asn.ErrSyntax},
		{"192.0.2.0/24 1\n" + strings.Repeat("x", asn.MaxLineBytes+1) + "\n", 2, asn.ErrTooLong},
	}
	for _, c := range cases {
		_, err := asn.Load(strings.NewReader(c.in))
		var pe *asn.ParseError
		if !errors.As(err, &pe) || !errors.Is(err, c.err) || pe.Line != c.line {
			t.Errorf("Load(%.40q) = %v, want %v at line %d", c.in, err, c.err, c.line)
		}
	}
	if _, err := asn.LoadFile("testdata/does-not-exist"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
