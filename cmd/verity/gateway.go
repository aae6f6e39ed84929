package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-cdn/verity/control"
	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/acme"
	"github.com/verity-cdn/verity/internal/asn"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ratelimit"
	"github.com/verity-cdn/verity/s3api"
	"github.com/verity-cdn/verity/web"
)

// runGateway runs the gateway on the event bus (an embedded NATS server
// under --data, or the cluster at --nats): a coordinator (nodes join it at
// /v1/nodes/connect), the control plane (package control: sites, deploys,
// accounts, the event feed) and the site edge (package gateway), both on
// one listener. Sites come from the bus's sites bucket.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		cfg      gateway.Config
		ccfg     control.Config
		bcfg     events.Config
		dataDir  string
		sites    = map[string]string{}
		asnTable string
	)
	host, _ := os.Hostname()
	var (
		kcfg         coordinator.Config
		allowPrivate bool
	)
	fl.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "listen address")
	fl.StringVar(&cfg.Domain, "domain", "localhost", "parent domain of site origins (site NAME answers on NAME.<domain>)")
	fl.StringVar(&dataDir, "data", "", "data directory: the embedded NATS server stores under DIR/nats, deploys under DIR/uploads and DIR/content (default: <user cache dir>/verity/gateway)")
	fl.StringVar(&bcfg.URL, "nats", "", "external NATS server or cluster, e.g. nats://127.0.0.1:4222 or a comma-separated list of the cluster's servers (default: embedded)")
	fl.IntVar(&bcfg.Replicas, "nats-replicas", 1, "JetStream replicas of the event stream, KV buckets and consumers: 3 on a three-server cluster (needs --nats)")
	fl.StringVar(&bcfg.Name, "name", "gateway-"+host, "this gateway's name in events")
	fl.StringVar(&ccfg.AdminToken, "admin-token", os.Getenv("VERITY_ADMIN_TOKEN"), "admin token of the site API (env VERITY_ADMIN_TOKEN; default: generated into DIR/admin-token on first start)")
	fl.Int64Var(&ccfg.MaxDeployBytes, "max-deploy-bytes", 1<<30, "largest CAR a deploy may upload")
	fl.BoolVar(&ccfg.Faucet, "faucet", false, "development faucet: let the admin top accounts up for free (verity accounts topup)")
	fl.DurationVar(&cfg.MeterInterval, "meter-interval", 10*time.Second, "how often bytes served on the HTTPS path and by the S3 API are charged to their accounts")
	fl.DurationVar(&kcfg.CollectInterval, "collect-interval", 10*time.Minute, "how often unreferenced content (deleted or overwritten S3 objects, content of uploads that never completed) is looked for and unplaced from nodes, by one gateway of a cluster at a time; negative: never (docs/storage.md)")
	fl.DurationVar(&kcfg.CollectGrace, "collect-grace", time.Hour, "how long content must have been unreferenced before it is unplaced")
	fl.IntVar(&ccfg.Replicas, "replicas", 2, "nodes that must hold a deploy before its site is published")
	fl.StringVar(&ccfg.PublicURL, "public-url", "", "this gateway's base URL as nodes reach it (default: http://<listen address>)")
	fl.BoolVar(&cfg.Payments.Disabled, "no-vouchers", false, "issue no payment vouchers with sessions (workers fetch from nodes unpaid)")
	fl.Uint64Var(&cfg.Payments.Budget, "voucher-budget", gateway.DefaultVoucherBudget, "bytes a session's voucher lets a worker receive from nodes, over all of them")
	fl.Uint64Var(&cfg.Payments.MinBudget, "voucher-min-budget", gateway.DefaultVoucherMinBudget, "least budget of a voucher for a site of known size (budgets are twice the site's deployed size, at most --voucher-budget)")
	fl.Uint64Var(&cfg.Payments.NodeCap, "voucher-node-cap", gateway.DefaultVoucherNodeCap, "bytes any one node may be paid under a voucher (bounds what a visitor's own node can claim)")
	fl.DurationVar(&cfg.Payments.VoucherTTL, "voucher-ttl", time.Hour, "lifetime of a voucher; the worker asks for a new one before it ends")
	fl.StringVar(&cfg.Payments.DefaultAccount, "default-account", "default", "account paying for sites that name none")
	dnslink := fl.Bool("dnslink", false, "serve custom domains: a Host outside --domain is looked up as the TXT record _dnslink.<host> (dnslink=/ipfs/<cid>)")
	dnsServer := fl.String("dns-server", "", "DNS server (host:port) for DNSLink lookups and custom domains' ownership checks (default: the system resolver)")
	fl.Func("admin-host", "host name that serves the gateway's own API when --dnslink is on (repeatable; IP literals, localhost and --domain always do)", func(v string) error {
		cfg.AdminHosts = append(cfg.AdminHosts, v)
		return nil
	})
	fl.Func("trusted-proxy", "address or prefix of a reverse proxy in front of the gateway, whose X-Forwarded-For names the client (repeatable; default none: the header is ignored)", func(v string) error {
		tp, err := ratelimit.ParseTrustedProxies([]string{v})
		if err != nil {
			return err
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, tp...)
		return nil
	})
	s3Listen := fl.String("s3-listen", "", "serve the S3-compatible API on this address too, e.g. 127.0.0.1:9000 (docs/storage.md; default: off)")
	s3Domain := fl.String("s3-domain", "", "with --s3-listen: answer virtual-hosted-style requests for BUCKET.<domain>")
	s3Price := fl.Uint64("s3-storage-price", 1<<30, "with --s3-listen: balance bytes charged for one GiB stored for 30 days")
	s3Interval := fl.Duration("s3-storage-interval", time.Hour, "with --s3-listen: how often storage is charged to the accounts")
	s3Cert := fl.String("s3-tls-cert", "", "with --s3-listen: serve the S3 API over HTTPS with this PEM certificate (chain) file, read again when it changes (default: with --https, certificates from ACME for --s3-domain and its buckets' names; otherwise plain HTTP)")
	s3Key := fl.String("s3-tls-key", "", "with --s3-tls-cert: its PEM private key file")
	s3Advertise := fl.String("s3-advertise", "", "with --s3-listen: the URL the cluster's other gateways reach this S3 API at, to forward the parts of multipart uploads staged here (default: the --s3-listen address; set it when that is a wildcard address)")
	s3MaxObject := fl.Int64("s3-max-object-bytes", 5<<30, "with --s3-listen: the largest object one PUT (or one part of a multipart upload) may store: S3's 5 GiB")
	s3MaxMultipart := fl.Int64("s3-max-multipart-bytes", 5<<40, "with --s3-listen: the largest object a multipart upload may make: S3's 5 TiB")
	s3Plain := fl.Bool("s3-plain", false, "with --s3-listen and --https: serve the S3 API over plain HTTP all the same (behind a TLS-terminating proxy, or on a private network)")
	var https httpsFlags
	fl.StringVar(&https.addr, "https", "", "serve HTTPS (and HTTP/3) on this address too, e.g. 0.0.0.0:443, with certificates from ACME for the gateway's names, site origins and custom domains; plain HTTP then redirects names to https (default: plain HTTP only)")
	fl.StringVar(&https.ca, "acme-ca", "", "ACME directory URL (default: Let's Encrypt, "+acme.LetsEncrypt+")")
	fl.StringVar(&https.email, "acme-email", "", "contact address for the ACME account (expiry notices)")
	fl.StringVar(&https.caRoot, "acme-ca-root", "", "PEM file of the root to trust for the ACME server's own HTTPS API (a private or test CA; default: the system roots)")
	fl.BoolVar(&https.noHTTP3, "no-http3", false, "with --https: do not serve HTTP/3 (UDP) nor advertise it")
	fl.DurationVar(&https.hsts, "hsts-max-age", 365*24*time.Hour, "with --https: Strict-Transport-Security max-age on HTTPS responses (0: none)")
	fl.StringVar(&https.dnsServer, "acme-dns-server", "", "with --https: the primary DNS server (host:port) of --domain's zone, updated by RFC 2136 for DNS-01 challenges: wildcard certificates *.<domain> and *.preview.<domain> instead of one per site")
	fl.StringVar(&https.dnsKey, "acme-dns-key", "", "TSIG key name for --acme-dns-server's updates")
	fl.StringVar(&https.dnsKeyAlg, "acme-dns-key-alg", "hmac-sha256", "TSIG algorithm: hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1")
	fl.StringVar(&https.dnsKeyFile, "acme-dns-key-file", "", "file holding the TSIG key's secret (base64, as in a BIND key file's secret)")
	fl.BoolVar(&allowPrivate, "allow-private-addrs", false, "accept nodes whose URLs (and webhook endpoints) are on private, loopback or link-local addresses, and fetch from them (a network on one machine or a private LAN); by default they are refused, checked again on every connection")
	fl.StringVar(&asnTable, "asn-table", "", "prefix → ASN table file for routing: ip2asn TSV (gzip or not) or \"prefix ASN [country]\" lines (default: none)")
	fl.Func("site", "publish site NAME at ROOT_CID on start, as NAME=ROOT_CID (repeatable)", func(v string) error {
		name, root, ok := strings.Cut(v, "=")
		if !ok || root == "" {
			return fmt.Errorf("want NAME=CID, got %q", v)
		}
		if err := gateway.ValidateSiteName(name); err != nil {
			return err
		}
		if _, err := cid.Parse(root); err != nil {
			return fmt.Errorf("site %s: root %q is not a CID: %w", name, root, err)
		}
		sites[name] = root
		return nil
	})
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dnslink {
		cfg.DNSLink = gateway.NewDNSLink(gateway.DNSLinkConfig{Server: *dnsServer})
	}
	ccfg.DNSServer = *dnsServer // custom domains' ownership checks
	switch {
	case (*s3Cert == "") != (*s3Key == ""):
		return fmt.Errorf("gateway: --s3-tls-cert and --s3-tls-key go together: %w", errUsage)
	case (*s3Cert != "" || *s3Plain || *s3Domain != "" || *s3Advertise != "") && *s3Listen == "":
		return fmt.Errorf("gateway: --s3-domain, --s3-tls-cert, --s3-plain and --s3-advertise need --s3-listen: %w", errUsage)
	case *s3Cert != "" && *s3Plain:
		return fmt.Errorf("gateway: --s3-tls-cert or --s3-plain, not both: %w", errUsage)
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("gateway: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	if bcfg.Replicas < 1 || (bcfg.Replicas > 1 && bcfg.URL == "") {
		// The embedded server is a single server: it can keep one copy.
		return fmt.Errorf("gateway: --nats-replicas %d: want 1, or more with --nats: %w", bcfg.Replicas, errUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	kcfg.AllowPrivateAddrs = allowPrivate
	ccfg.AllowPrivateAddrs = allowPrivate // and sites' webhook endpoints
	if asnTable != "" {
		table, err := asn.LoadFile(asnTable)
		if err != nil {
			return fmt.Errorf("gateway: --asn-table: %w", err)
		}
		kcfg.Router = coordinator.NewRouter(coordinator.RouterConfig{Table: table})
	}
	if dataDir == "" {
		var err error
		if dataDir, err = defaultDataDir("gateway"); err != nil {
			return err
		}
	}
	if bcfg.URL == "" {
		bcfg.StoreDir = filepath.Join(dataDir, "nats")
	}
	bcfg.Logger = log
	bus, err := events.Open(ctx, bcfg)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer bus.Close()

	// The parts, each closed before what it uses: the edge (which charges
	// what it served as it closes), the control plane, the coordinator,
	// the bus.
	kcfg.Bus, kcfg.Logger = bus, log
	// One key for the vouchers and the requests the coordinator and the
	// control plane make of nodes: nodes that require payment serve their
	// HTTP port to it only.
	if cfg.Payments.Key, err = cfg.Payments.SigningKey(dataDir); err != nil {
		return err
	}
	kcfg.RequestKey, ccfg.RequestKey = cfg.Payments.Key, cfg.Payments.Key
	// One registry for the coordinator's metrics and the edge's, which
	// serves them at /metrics.
	reg := prometheus.NewRegistry()
	kcfg.Registerer, cfg.Registerer = reg, reg
	coord, err := coordinator.New(ctx, kcfg)
	if err != nil {
		return fmt.Errorf("gateway: coordinator: %w", err)
	}
	defer coord.Close()
	// Bound first: the control plane sends nodes to this address for
	// deployed CARs unless --public-url says otherwise.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	ccfg.Bus = bus
	ccfg.MaxContentBytes = s3api.MaxCARBytes(*s3MaxObject, *s3MaxMultipart) // the CARs of S3 objects, stored or fetched from nodes
	ccfg.Coordinator = coord
	ccfg.DataDir = dataDir
	ccfg.PublicURL = cmp.Or(ccfg.PublicURL, "http://"+ln.Addr().String())
	ccfg.Logger = log
	ccfg.Registerer = reg
	ccfg.SiteDomain = cfg.Domain
	ctl, err := control.New(ctx, ccfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer ctl.Close()
	// The collector keeps what S3 buckets reference: registered on every
	// gateway, with the S3 API or without, since any may run it.
	refs, err := s3api.NewReferences(bus)
	if err != nil {
		ln.Close()
		return fmt.Errorf("gateway: %w", err)
	}
	coord.AddReferenceSource(refs)
	cfg.Listener = ln
	var g *gateway.Gateway
	var s3srv *s3api.Server
	if https.addr != "" {
		var wildcards []string
		if *s3Listen != "" && *s3Domain != "" && *s3Cert == "" && !*s3Plain {
			wildcards = append(wildcards, "*."+*s3Domain) // virtual-hosted buckets, with DNS-01
		}
		hc, closeHTTPS, err := https.setup(bus, ln, cfg.Domain, wildcards, func(ctx context.Context, host string) error {
			if s3srv != nil && s3srv.AllowCertificate(ctx, host) == nil {
				return nil
			}
			return g.AllowCertificate(ctx, host)
		}, log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: %w", err)
		}
		defer closeHTTPS()
		cfg.HTTPS = hc
	}
	cfg.Sites = ctl.Sites()   // the sites bucket
	cfg.API = ctl             // /v1/ on the gateway's own host
	cfg.Console = web.Console // /console/, over that API
	cfg.Domains = ctl.Domains()
	cfg.Nodes = coord // ranked, narrowed to each root's holders
	cfg.Offers = coord
	cfg.Accounts = coord
	cfg.ScoreSink = coord.Router()
	cfg.Charges = coord.Ledger()
	cfg.Holds = coord.Ledger()           // each voucher holds its budget
	cfg.AllowPrivateAddrs = allowPrivate // the gateway's own fetches from nodes too
	cfg.Bus = bus
	cfg.DataDir = dataDir // the voucher key
	cfg.Logger = log
	g, err = gateway.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	log.Info("gateway listening", "url", g.URL(), "https", https.addr, "nats", bus.ClientURL(), "adminTokenFile", ctl.AdminTokenPath())
	fmt.Fprintf(stdout, "gateway: %s\n", g.URL())
	if cfg.HTTPS != nil {
		fmt.Fprintf(stdout, "https: %s\n", g.HTTPSURL(cfg.Domain))
	}
	if *s3Listen != "" {
		var s3tls *tls.Config
		switch {
		case *s3Cert != "":
			fc, err := s3api.NewFileCertificate(*s3Cert, *s3Key, func(err error) {
				log.Warn("s3: the certificate files could not be read again; serving the last good pair", "err", err)
			})
			if err != nil {
				return fmt.Errorf("gateway: --s3-tls-cert: %w", err)
			}
			s3tls = fc.TLSConfig()
		case cfg.HTTPS != nil && !*s3Plain:
			if *s3Domain == "" {
				return fmt.Errorf("gateway: --s3-listen with --https needs --s3-domain, the API's name for its ACME certificates (or --s3-tls-cert, or --s3-plain): %w", errUsage)
			}
			s3tls = cfg.HTTPS.TLS
		}
		s3ln, err := net.Listen("tcp", *s3Listen)
		if err != nil {
			return fmt.Errorf("gateway: s3 listen: %w", err)
		}
		srv, err := s3api.New(s3api.Config{
			Listener: s3ln, TLS: s3tls, AdvertiseURL: *s3Advertise, Keys: ctl, Store: ctl, Bus: bus, DataDir: dataDir,
			Domain: *s3Domain, Logger: log.With("api", "s3"),
			MaxObjectBytes: *s3MaxObject, MaxMultipartBytes: *s3MaxMultipart,
			Charges: coord.Ledger(), Accounts: coord.Ledger(), StoragePrice: *s3Price, StorageInterval: *s3Interval,
			MeterInterval: cfg.MeterInterval, // what the S3 API serves is charged as what the gateway serves
		})
		if err != nil {
			s3ln.Close()
			return fmt.Errorf("gateway: %w", err)
		}
		s3srv = srv
		ctl.SetBuckets(srv) // sites may follow a bucket
		s3done := make(chan error, 1)
		go func() { s3done <- srv.Run(ctx) }()
		defer func() {
			srv.Close()
			<-s3done
		}()
		fmt.Fprintf(stdout, "s3: %s\n", srv.URL())
	}
	for name, root := range sites {
		if _, err := ctl.Sites().Publish(ctx, name, root); err != nil {
			return fmt.Errorf("gateway: publish %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", name, g.SiteURL(name))
	}
	return g.Run(ctx)
}
