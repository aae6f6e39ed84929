package acme

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// RFC2136 is a DNS provider for DNS-01 challenges: it adds and removes
// the challenges' TXT records by dynamic updates (RFC 2136) signed with a
// TSIG key (RFC 8945), which BIND, Knot, PowerDNS and most authoritative
// DNS servers accept. With it the gateway obtains wildcard certificates
// (*.DOMAIN for every site's origin, *.preview.DOMAIN for previews): one
// certificate instead of one per site.
type RFC2136 struct {
	// Server is the primary server of the zone, host:port.
	Server string
	// KeyName is the TSIG key's name, e.g. "verity-acme.".
	KeyName string
	// KeyAlg is the TSIG algorithm: hmac-sha256 (default), hmac-sha512,
	// hmac-sha384, hmac-sha224 or hmac-sha1.
	KeyAlg string
	// Secret is the TSIG key's secret, base64 as in a BIND key file.
	Secret string
	// Timeout bounds one update; default 10 s.
	Timeout time.Duration
}

var tsigAlgs = map[string]string{
	"hmac-sha1": dns.HmacSHA1, "hmac-sha224": dns.HmacSHA224, "hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384, "hmac-sha512": dns.HmacSHA512,
}

// Check reports what is missing or wrong in p's settings.
func (p *RFC2136) Check() error {
	if p.Server == "" || !strings.Contains(p.Server, ":") {
		return fmt.Errorf("acme: RFC 2136 server %q is not host:port", p.Server)
	}
	if p.KeyName == "" {
		return errors.New("acme: RFC 2136 needs a TSIG key name")
	}
	if _, ok := tsigAlgs[strings.ToLower(cmpOr(p.KeyAlg, "hmac-sha256"))]; !ok {
		return fmt.Errorf("acme: TSIG algorithm %q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", p.KeyAlg)
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p.Secret)); err != nil || len(b) == 0 {
		return errors.New("acme: the TSIG secret is not base64")
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// AppendRecords adds recs to zone (libdns.RecordAppender).
func (p *RFC2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if err := p.update(ctx, zone, recs, true); err != nil {
		return nil, err
	}
	return recs, nil
}

// DeleteRecords removes recs from zone (libdns.RecordDeleter).
func (p *RFC2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	if err := p.update(ctx, zone, recs, false); err != nil {
		return nil, err
	}
	return recs, nil
}

func (p *RFC2136) update(ctx context.Context, zone string, recs []libdns.Record, insert bool) error {
	if err := p.Check(); err != nil {
		return err
	}
	zone = dns.Fqdn(zone)
	rrs := make([]dns.RR, 0, len(recs))
	for _, rec := range recs {
		r := rec.RR()
		if r.Type != "TXT" {
			return fmt.Errorf("acme: RFC 2136 updates TXT records only, not %s", r.Type)
		}
		ttl := uint32(r.TTL.Seconds())
		if ttl == 0 {
			ttl = 60
		}
		rrs = append(rrs, &dns.TXT{
			Hdr: dns.RR_Header{Name: dns.Fqdn(libdns.AbsoluteName(r.Name, zone)), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: splitTXT(r.Data),
		})
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	if insert {
		m.Insert(rrs)
	} else {
		m.Remove(rrs)
	}
	key := dns.Fqdn(p.KeyName)
	alg := tsigAlgs[strings.ToLower(cmpOr(p.KeyAlg, "hmac-sha256"))]
	m.SetTsig(key, alg, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: p.Timeout, TsigSecret: map[string]string{key: strings.TrimSpace(p.Secret)}}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	reply, _, err := c.ExchangeContext(ctx, m, p.Server)
	if err != nil {
		return fmt.Errorf("acme: RFC 2136 update of %s at %s: %w", zone, p.Server, err)
	}
	if reply.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("acme: RFC 2136 update of %s at %s refused: %s", zone, p.Server, dns.RcodeToString[reply.Rcode])
	}
	// A success must come from the key's holder: the client checked the
	// reply's signature when it has one, and one without is not trusted.
	if reply.IsTsig() == nil {
		return fmt.Errorf("acme: RFC 2136 update of %s at %s: the success reply is not signed", zone, p.Server)
	}
	return nil
}

// splitTXT splits s into the 255-byte strings of a TXT record.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
