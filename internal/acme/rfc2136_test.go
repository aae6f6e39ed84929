package acme

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libdns/libdns"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/acmetest"
)

// An update signed with another key, or with none, is refused by the
// zone's server and changes nothing; bad settings are named before any
// update is sent.
func TestRFC2136RefusesWrongKey(t *testing.T) {
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: 1, TLSPort: 1})
	var other [32]byte
	_, _ = rand.Read(other[:])
	rec := []libdns.Record{libdns.TXT{Name: "_acme-challenge.x", Text: "token", TTL: time.Minute}}
	wrong := &RFC2136{Server: ca.DNS, KeyName: acmetest.TSIGKeyName, Secret: base64.StdEncoding.EncodeToString(other[:])}
	if _, err := wrong.AppendRecords(t.Context(), acmetest.Zone, rec); err == nil || !strings.Contains(err.Error(), "NOTAUTH") {
		t.Fatalf("update with another key: %v, want refused NOTAUTH", err)
	}
	if got := ca.TXT("_acme-challenge.x." + acmetest.Zone); len(got) != 0 || ca.Updates() != 0 {
		t.Fatalf("a refused update changed the zone: %q, %d updates", got, ca.Updates())
	}
	for _, p := range []RFC2136{
		{Server: "nohostport", KeyName: "k", Secret: ca.TSIGSecret},
		{Server: ca.DNS, Secret: ca.TSIGSecret},
		{Server: ca.DNS, KeyName: "k", Secret: "not base64!"},
		{Server: ca.DNS, KeyName: "k", KeyAlg: "md5", Secret: ca.TSIGSecret},
	} {
		if _, err := p.AppendRecords(t.Context(), acmetest.Zone, rec); err == nil || !strings.HasPrefix(err.Error(), "acme: ") {
			t.Errorf("%+v: %v, want a settings error", p, err)
		}
	}
	// The right key adds and removes.
	right := &RFC2136{Server: ca.DNS, KeyName: acmetest.TSIGKeyName, Secret: ca.TSIGSecret}
	if _, err := right.AppendRecords(t.Context(), acmetest.Zone, rec); err != nil {
		t.Fatal(err)
	}
	if got := ca.TXT("_acme-challenge.x." + acmetest.Zone); !slices.Equal(got, []string{"token"}) {
		t.Fatalf("after append: %q", got)
	}
	if _, err := right.DeleteRecords(t.Context(), acmetest.Zone, rec); err != nil {
		t.Fatal(err)
	}
	if got := ca.TXT("_acme-challenge.x." + acmetest.Zone); len(got) != 0 {
		t.Fatalf("after delete: %q", got)
	}
}

// With a DNS provider, a wildcard certificate is obtained by DNS-01 (the
// challenge's TXT record put in the zone by RFC 2136 and removed after)
// and serves every name under it, with no certificate asked for any of
// them one by one: the on-demand policy refuses them all.
func TestWildcardByDNS01(t *testing.T) {
	bus := openBus(t)
	kv, err := bus.KV(events.BucketTLS)
	if err != nil {
		t.Fatal(err)
	}
	httpLn, tlsLn := listen(t), listen(t)
	ca := acmetest.Start(t, acmetest.Config{HTTPPort: port(httpLn), TLSPort: port(tlsLn)})
	m, err := New(Config{
		KV: kv, CA: ca.Directory, CARoots: ca.APIRoots,
		Allow:        func(context.Context, string) error { return errors.New("no certificate one by one") },
		HTTPPort:     port(httpLn),
		TLSPort:      port(tlsLn),
		DNS:          &RFC2136{Server: ca.DNS, KeyName: acmetest.TSIGKeyName, Secret: ca.TSIGSecret},
		DNSResolvers: []string{ca.DNS},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	serve(t, m, httpLn, tlsLn)
	wildcard := "*." + strings.TrimSuffix(acmetest.Zone, ".")
	if err := m.Manage(t.Context(), []string{wildcard}); err != nil {
		t.Fatal(err)
	}
	roots := ca.Roots(t)
	for _, host := range []string{"a.verity.test", "blog.verity.test"} {
		var names []string
		err := testutil.Wait(90*time.Second, func() error {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
				"127.0.0.1:"+strconv.Itoa(port(tlsLn)), &tls.Config{ServerName: host, RootCAs: roots})
			if err != nil {
				return err
			}
			defer conn.Close()
			names = conn.ConnectionState().PeerCertificates[0].DNSNames
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if !slices.Equal(names, []string{wildcard}) {
			t.Fatalf("%s served a certificate for %q, want %s", host, names, wildcard)
		}
	}
	if ca.Updates() < 2 {
		t.Errorf("%d DNS updates, want the challenge's record put and removed", ca.Updates())
	}
	if got := ca.TXT("_acme-challenge." + acmetest.Zone); len(got) != 0 {
		t.Errorf("the challenge's record is left in the zone: %q", got)
	}
	if _, err := get("a.other.test", port(tlsLn), roots); err == nil {
		t.Error("a name outside the wildcard got a certificate")
	}
}
