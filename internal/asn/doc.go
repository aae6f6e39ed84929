// Package asn maps IP addresses to the autonomous system (ASN) announcing
// them: a longest-prefix-match table (github.com/gaissmai/bart) from
// prefixes to ASN and country, loaded from BGP-derived data.
//
// Usage:
//
//	t, err := asn.LoadFile("ip2asn-combined.tsv.gz")
//	info, ok := t.Lookup(netip.MustParseAddr("192.0.2.7"))
//	// info.ASN == 64500, info.Country == "NL", info.Prefix == 192.0.2.0/24
//
// # Accepted formats
//
// Load reads text, one entry per line, gzip-compressed or not (detected by
// its magic bytes). Blank lines and lines starting with '#' are skipped.
// Two line formats are accepted, and may be mixed, IPv4 and IPv6 alike:
//
// Range lines, the tab-separated format of iptoasn.com's ip2asn-v4.tsv,
// ip2asn-v6.tsv and ip2asn-combined.tsv:
//
//	range_start <TAB> range_end <TAB> AS_number <TAB> country_code <TAB> AS_description
//
// for example "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET". The range is
// inclusive; ranges that are not a single CIDR block are split into the
// fewest CIDR blocks covering them exactly. The country and description
// may be missing; a country of "None" or "Unknown" is treated as empty.
// Ranges with AS number 0 ("Not routed") are skipped.
//
// Prefix lines, whitespace-separated:
//
//	prefix AS_number [country_code]
//
// for example "2001:db8::/32 64501 DE" or "198.51.100.0/24 AS64502".
//
// An AS number may be written with or without an "AS" prefix. A later line
// for the same prefix replaces an earlier one; a more specific prefix wins
// over a covering one at lookup. IPv4-mapped IPv6 addresses are looked up
// as IPv4.
//
// Load fails on the first malformed line with a *ParseError carrying its
// line number and wrapping ErrSyntax, ErrRange or ErrTooLong.
package asn
