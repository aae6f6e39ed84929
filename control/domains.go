package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
)

// Custom domains. A site's owner attaches a domain (POST
// /v1/sites/{name}/domains); it serves nothing until the owner proves
// control of the name (POST .../domains/{domain}/verify) with either
//
//   - a TXT record at _verity-challenge.<domain> holding
//     "verity-verify=<token>" (the token the attach answered with), or
//   - a CNAME from <domain> to <site>.<SiteDomain>.
//
// A verified domain serves its site's current root, whatever it is: it
// follows the site through deploys and rollbacks. The gateway obtains
// certificates only for verified domains. A domain belongs to one site at
// a time; detaching it (DELETE) frees it.

const (
	// TXTPrefix is the label the TXT proof lives under.
	TXTPrefix = "_verity-challenge."
	// TXTValuePrefix starts the TXT record's value.
	TXTValuePrefix = "verity-verify="
	// MaxDomainsPerSite bounds a site's attached domains.
	MaxDomainsPerSite = 32
)

// ErrDomainTaken: attaching a domain another site holds (409).
var ErrDomainTaken = errors.New("domain attached to another site")

// ErrDomainUnproven: a verify that found neither proof (409).
var ErrDomainUnproven = errors.New("domain ownership not proven")

var _ gateway.DomainSource = (*Domains)(nil)

// Domains mirrors the domains bucket (a watch keeps it current, so the
// gateway's lookup costs no round trip) and changes it.
type Domains struct {
	kv         jetstream.KeyValue
	bus        *events.Bus
	source     string
	siteDomain string
	resolver   *net.Resolver
	now        func() time.Time
	log        *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	domains map[string]api.DomainRecord
}

// newDomains loads the bucket and starts watching it.
func newDomains(ctx context.Context, cfg Config) (*Domains, error) {
	kv, err := cfg.Bus.KV(events.BucketDomains)
	if err != nil {
		return nil, err
	}
	d := &Domains{kv: kv, bus: cfg.Bus, source: cfg.Name, siteDomain: cfg.SiteDomain, now: cfg.Now,
		log: cfg.Logger.With("component", "domains"), domains: map[string]api.DomainRecord{}}
	d.resolver = net.DefaultResolver
	if cfg.DNSServer != "" {
		server := cfg.DNSServer
		d.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, network, server)
		}}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	w, err := kv.WatchAll(d.ctx)
	if err != nil {
		d.cancel()
		return nil, fmt.Errorf("control: watch domains: %w", err)
	}
	if err := events.LoadInitial(ctx, w, d.apply); err != nil {
		_ = w.Stop()
		d.cancel()
		return nil, fmt.Errorf("control: load domains: %w", err)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		events.Watch(d.ctx, w, d.apply)
	}()
	return d, nil
}

func (d *Domains) apply(e jetstream.KeyValueEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(d.domains, e.Key())
		return
	}
	var rec api.DomainRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		d.log.Warn("bad domain record in KV", "domain", e.Key(), "err", err)
		return
	}
	d.domains[e.Key()] = rec
}

func (d *Domains) close() {
	d.cancel()
	d.wg.Wait()
}

// DomainSite implements gateway.DomainSource: the site a verified domain
// serves, or an error wrapping gateway.ErrUnknownSite.
func (d *Domains) DomainSite(_ context.Context, host string) (string, error) {
	d.mu.Lock()
	rec, ok := d.domains[host]
	d.mu.Unlock()
	if !ok || !rec.Verified {
		return "", fmt.Errorf("%w: no site has the domain %q", gateway.ErrUnknownSite, host)
	}
	return rec.Site, nil
}

// List returns site's domains, by name.
func (d *Domains) List(site string) []api.DomainRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []api.DomainRecord
	for _, rec := range d.domains {
		if rec.Site == site {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b api.DomainRecord) int { return strings.Compare(a.Domain, b.Domain) })
	return out
}

// normalizeDomain checks name is a DNS name a site may attach: at least
// two labels of [a-z0-9-], not under the gateway's own site domain, not
// localhost, not an IP literal.
func (d *Domains) normalizeDomain(name string) (string, error) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	bad := func(why string) error { return badRequest("domain %q: %s", name, why) }
	if len(name) == 0 || len(name) > 253 {
		return "", bad("want a DNS name of 1 to 253 characters")
	}
	if net.ParseIP(name) != nil {
		return "", bad("an IP address is not a domain")
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return "", bad("want a name with a dot, e.g. www.example.com")
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad("each label is 1 to 63 characters, not starting or ending with '-'")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", bad("only letters, digits and '-' (IDNs in punycode)")
			}
		}
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return "", bad("localhost is not a public name")
	}
	if name == d.siteDomain || strings.HasSuffix(name, "."+d.siteDomain) {
		return "", bad("names under " + d.siteDomain + " are the gateway's own site origins")
	}
	return name, nil
}

// record fills the proof instructions of rec.
func (d *Domains) instructions(rec *api.DomainRecord) {
	rec.TXTName = TXTPrefix + rec.Domain
	rec.TXTValue = TXTValuePrefix + rec.Token
	rec.CNAMETarget = rec.Site + "." + d.siteDomain
}

// Attach attaches domain to site, pending its proof. Attaching again to
// the same site returns the existing record; another site's domain is
// ErrDomainTaken.
func (d *Domains) Attach(ctx context.Context, site, domain string) (api.DomainRecord, error) {
	domain, err := d.normalizeDomain(domain)
	if err != nil {
		return api.DomainRecord{}, err
	}
	if len(d.List(site)) >= MaxDomainsPerSite {
		return api.DomainRecord{}, badRequest("site %s has %d domains, the most a site may have", site, MaxDomainsPerSite)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	rec := api.DomainRecord{Domain: domain, Site: site, Token: hex.EncodeToString(tok[:]), Created: d.now().UTC()}
	d.instructions(&rec)
	b, _ := json.Marshal(rec)
	if _, err := d.kv.Create(ctx, domain, b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return api.DomainRecord{}, fmt.Errorf("control: attach %s: %w", domain, err)
		}
		cur, err := d.get(ctx, domain)
		if err != nil {
			return api.DomainRecord{}, err
		}
		if cur.Site != site {
			return api.DomainRecord{}, &RequestError{Kind: ErrDomainTaken, Detail: fmt.Sprintf("%s is attached to another site; it must be removed there first", domain)}
		}
		return cur, nil
	}
	d.emit(ctx, events.TypeDomainAttached, "attached/"+domain+"/"+rec.Token, events.DomainAttached{Site: site, Domain: domain})
	d.mu.Lock()
	d.domains[domain] = rec // read-your-writes before the watch catches up
	d.mu.Unlock()
	return rec, nil
}

// get reads domain's record from the bucket.
func (d *Domains) get(ctx context.Context, domain string) (api.DomainRecord, error) {
	e, err := d.kv.Get(ctx, domain)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return api.DomainRecord{}, fmt.Errorf("%w: domain %s is not attached", ErrNotFound, domain)
	}
	if err != nil {
		return api.DomainRecord{}, fmt.Errorf("control: read domain %s: %w", domain, err)
	}
	var rec api.DomainRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return api.DomainRecord{}, fmt.Errorf("control: domain record %s: %w", domain, err)
	}
	return rec, nil
}

// siteDomain reads domain's record and checks it belongs to site.
func (d *Domains) siteRecord(ctx context.Context, site, domain string) (api.DomainRecord, uint64, error) {
	domain, err := d.normalizeDomain(domain)
	if err != nil {
		return api.DomainRecord{}, 0, err
	}
	e, err := d.kv.Get(ctx, domain)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return api.DomainRecord{}, 0, fmt.Errorf("%w: domain %s is not attached to site %s", ErrNotFound, domain, site)
	}
	if err != nil {
		return api.DomainRecord{}, 0, fmt.Errorf("control: read domain %s: %w", domain, err)
	}
	var rec api.DomainRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return api.DomainRecord{}, 0, fmt.Errorf("control: domain record %s: %w", domain, err)
	}
	if rec.Site != site {
		// Not this site's: say no more than that it is not attached here.
		return api.DomainRecord{}, 0, fmt.Errorf("%w: domain %s is not attached to site %s", ErrNotFound, domain, site)
	}
	return rec, e.Revision(), nil
}

// Verify looks for the TXT or CNAME proof of domain and marks it verified
// when one is there; ErrDomainUnproven says what was found otherwise.
func (d *Domains) Verify(ctx context.Context, site, domain string) (api.DomainRecord, error) {
	rec, rev, err := d.siteRecord(ctx, site, domain)
	if err != nil {
		return api.DomainRecord{}, err
	}
	d.instructions(&rec)
	if rec.Verified {
		return rec, nil
	}
	method, found := d.prove(ctx, rec)
	if method == "" {
		return rec, &RequestError{Kind: ErrDomainUnproven, Detail: fmt.Sprintf(
			"add a TXT record %s with the value %q, or a CNAME from %s to %s, then verify again (found: %s)",
			rec.TXTName, rec.TXTValue, rec.Domain, rec.CNAMETarget, found)}
	}
	rec.Verified, rec.Method, rec.VerifiedAt = true, method, d.now().UTC()
	b, _ := json.Marshal(rec)
	if _, err := d.kv.Update(ctx, rec.Domain, b, rev); err != nil {
		return api.DomainRecord{}, fmt.Errorf("control: verify %s: %w (changed meanwhile: try again)", rec.Domain, err)
	}
	d.mu.Lock()
	d.domains[rec.Domain] = rec
	d.mu.Unlock()
	d.log.Info("custom domain verified", "site", site, "domain", rec.Domain, "method", method)
	d.emit(ctx, events.TypeDomainVerified, "verified/"+rec.Domain+"/"+rec.Token, events.DomainVerified{Site: site, Domain: rec.Domain, Method: method})
	return rec, nil
}

// prove looks up the two proofs; it returns the method that holds ("" for
// none) and, for the error, what it found.
func (d *Domains) prove(ctx context.Context, rec api.DomainRecord) (method, found string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var seen []string
	txts, err := d.resolver.LookupTXT(ctx, rec.TXTName)
	if err == nil {
		for _, v := range txts {
			if strings.TrimSpace(v) == rec.TXTValue {
				return "txt", ""
			}
		}
		seen = append(seen, fmt.Sprintf("TXT %s = %q", rec.TXTName, txts))
	} else {
		seen = append(seen, fmt.Sprintf("no TXT at %s", rec.TXTName))
	}
	cname, err := d.resolver.LookupCNAME(ctx, rec.Domain)
	cname = strings.TrimSuffix(strings.ToLower(cname), ".")
	switch {
	case err == nil && cname == rec.CNAMETarget:
		return "cname", ""
	case err == nil && cname != rec.Domain:
		seen = append(seen, fmt.Sprintf("CNAME %s → %s", rec.Domain, cname))
	default:
		seen = append(seen, fmt.Sprintf("no CNAME at %s", rec.Domain))
	}
	return "", strings.Join(seen, "; ")
}

// Remove detaches domain from site.
func (d *Domains) Remove(ctx context.Context, site, domain string) error {
	rec, rev, err := d.siteRecord(ctx, site, domain)
	if err != nil {
		return err
	}
	if err := d.kv.Delete(ctx, rec.Domain, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("control: remove %s: %w (changed meanwhile: try again)", rec.Domain, err)
	}
	d.mu.Lock()
	delete(d.domains, rec.Domain)
	d.mu.Unlock()
	d.emit(ctx, events.TypeDomainRemoved, "removed/"+rec.Domain+"/"+rec.Token, events.DomainRemoved{Site: site, Domain: rec.Domain})
	return nil
}

func (d *Domains) emit(ctx context.Context, t events.Type, id string, data any) {
	ev, err := events.NewWithID(id, t, d.source, data)
	if err == nil {
		err = d.bus.Publish(ctx, ev)
	}
	if err != nil {
		d.log.Warn("event not published", "type", t, "err", err)
	}
}

// The API: a site's deploy token or the admin token.

func (c *Control) apiListDomains(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	recs := c.domains.List(name)
	for i := range recs {
		c.domains.instructions(&recs[i])
	}
	if recs == nil {
		recs = []api.DomainRecord{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (c *Control) apiAttachDomain(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.AttachDomain
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"domain\": \"www.example.com\"}: %v", err))
		return
	}
	rec, err := c.domains.Attach(r.Context(), name, req.Domain)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (c *Control) apiVerifyDomain(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	rec, err := c.domains.Verify(r.Context(), name, r.PathValue("domain"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (c *Control) apiRemoveDomain(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	if err := c.domains.Remove(r.Context(), name, r.PathValue("domain")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Domains is the custom-domain registry, the gateway's DomainSource.
func (c *Control) Domains() *Domains { return c.domains }
