package asn

import (
	"net/netip"
	"sync"

	"github.com/gaissmai/bart"
)

// Info is what the table knows about an address.
type Info struct {
	ASN     uint32
	Country string // ISO 3166 alpha-2, upper case; "" when unknown
}

// entry is the compact value stored per prefix.
type entry struct {
	asn uint32
	cc  [2]byte
}

func (e entry) info() Info {
	if e.cc == [2]byte{} {
		return Info{ASN: e.asn}
	}
	return Info{ASN: e.asn, Country: string(e.cc[:])}
}

// Table is a longest-prefix-match table from prefixes to Info, for IPv4 and
// IPv6. The zero value is empty and ready. Lookups may run concurrently with
// each other; Insert must not run concurrently with anything else (build the
// table, then share it).
type Table struct {
	t     bart.Table[entry]
	mu    sync.RWMutex
	names map[uint32]string // AS descriptions
}

// New returns an empty table.
func New() *Table { return &Table{} }

// Insert maps prefix to asn and country ("" when unknown; only a two-letter
// code is kept). The prefix is masked to its length first.
func (t *Table) Insert(p netip.Prefix, asn uint32, country string) {
	if !p.IsValid() {
		return
	}
	addr := p.Addr()
	bits := p.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	t.t.Insert(netip.PrefixFrom(addr, bits).Masked(), entry{asn: asn, cc: countryCode(country)})
}

// InsertRange maps the inclusive range [start, end] to asn and country,
// split into CIDR prefixes.
func (t *Table) InsertRange(start, end netip.Addr, asn uint32, country string) error {
	ps, err := RangeToPrefixes(start, end)
	if err != nil {
		return err
	}
	cc := countryCode(country)
	for _, p := range ps {
		t.t.Insert(p, entry{asn: asn, cc: cc})
	}
	return nil
}

// SetName records a description for asn (e.g. "CLOUDFLARENET").
func (t *Table) SetName(asn uint32, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names == nil {
		t.names = make(map[uint32]string)
	}
	t.names[asn] = name
}

// Name returns the description recorded for asn, or "".
func (t *Table) Name(asn uint32) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.names[asn]
}

// Lookup returns the Info of the most specific prefix containing ip.
func (t *Table) Lookup(ip netip.Addr) (Info, bool) {
	e, ok := t.t.Lookup(ip.Unmap())
	if !ok {
		return Info{}, false
	}
	return e.info(), true
}

// ASN returns the AS number for ip, 0 when unknown.
func (t *Table) ASN(ip netip.Addr) uint32 {
	e, _ := t.t.Lookup(ip.Unmap())
	return e.asn
}

// LookupPrefix returns the most specific prefix containing ip and its Info.
func (t *Table) LookupPrefix(ip netip.Addr) (netip.Prefix, Info, bool) {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}, Info{}, false
	}
	p, e, ok := t.t.LookupPrefixLPM(netip.PrefixFrom(ip, ip.BitLen()))
	if !ok {
		return netip.Prefix{}, Info{}, false
	}
	return p, e.info(), true
}

// Len returns the number of prefixes in the table.
func (t *Table) Len() int { return t.t.Size() }

func countryCode(s string) [2]byte {
	if len(s) != 2 {
		return [2]byte{}
	}
	var cc [2]byte
	for i := range 2 {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			return [2]byte{}
		}
		cc[i] = c
	}
	return cc
}
