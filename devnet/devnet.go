package devnet

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/verity-cdn/verity/control"
	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/asn"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/node"
	"github.com/verity-cdn/verity/s3api"
	"github.com/verity-cdn/verity/web"
)

// loopbackASN is the default ASN table: loopback is one network.
//
//go:embed loopback-asn.tsv
var loopbackASN string

// SiteName is the name the demo site is published under.
const SiteName = "demo"

// Config configures a Devnet; zero values are defaults.
type Config struct {
	// DataDir holds the nodes' data and the imported site.
	// Default os.UserCacheDir()/verity/devnet.
	DataDir string
	// Listen is the gateway's address. Default 127.0.0.1:8080.
	Listen string
	// Nodes is how many storage nodes to run. Default 2.
	Nodes int
	// WebRTCOnly runs the nodes without WebTransport, as nodes behind NAT
	// reachable only over WebRTC. Default false.
	WebRTCOnly bool
	// DemoDir is the site directory to publish. Default: the embedded demo
	// site, written to DataDir/site first.
	DemoDir string
	// ASNTable is a prefix → ASN table file for the router (internal/asn
	// formats). Default: a table with loopback as one network.
	ASNTable string
	// NodeHost is the IP literal the nodes publish in their URLs
	// (node.Config.PublicHost); they still listen on 127.0.0.1. Another
	// loopback address (127.0.0.3) lets a test or the bench put
	// forwarders with delay in front of the nodes, on the same ports.
	// Default 127.0.0.1.
	NodeHost string
	// MaxDeployBytes bounds the site's CAR (control.Config.MaxDeployBytes).
	// Default 1 GiB.
	MaxDeployBytes int64
	// NodeMaxEgress caps each node's content egress, in bytes per second
	// (node.Config.MaxEgress). Default 0: unlimited.
	NodeMaxEgress int64
	// NodeDisableBao makes the nodes answer streams with the plain CAR,
	// as nodes of protocol version 1 (node.Config.DisableBao). Default
	// false.
	NodeDisableBao bool
	// NodeBasePort, when not 0, gives the nodes fixed ports instead of
	// ephemeral ones: node i (from 1) listens on 127.0.0.1 at
	// NodeBasePort+3(i-1) for HTTP (TCP), the next port for WebTransport
	// (UDP) and the one after for WebRTC (UDP). Default 0: ephemeral.
	NodeBasePort int
	// HeartbeatInterval is how often nodes report to the coordinator.
	// Default 10 s.
	HeartbeatInterval time.Duration
	// Account is the account paying for the demo site; devnet creates it
	// and tops it up to Funding with the development faucet. Default
	// "default" (the gateway's default account).
	Account string
	// Funding is the balance, in bytes, the account is topped up to on
	// start when it holds less than half of it. Default AccountFunds.
	Funding uint64
	// NodePayments configures the nodes' payments (credit window,
	// settlement policy).
	NodePayments node.PaymentConfig
	// GatewayPayments configures the gateway's vouchers (budget, per-node
	// cap); its zero value takes the gateway's defaults.
	GatewayPayments gateway.PaymentsConfig
	// S3Listen, when set, serves the S3-compatible API (package s3api)
	// on this address, e.g. 127.0.0.1:9000. Default "": no S3 API.
	S3Listen string
	// S3Domain turns on virtual-hosted-style S3 requests for
	// BUCKET.<S3Domain> (s3api.Config.Domain). Default "".
	S3Domain string
	// S3StoragePrice and S3StorageInterval set the S3 API's storage
	// billing (s3api.Config). Defaults: s3api's.
	S3StoragePrice    uint64
	S3StorageInterval time.Duration
	// S3MaxObjectBytes and S3MaxMultipartBytes bound the S3 API's
	// objects (s3api.Config), and with them the CARs the control plane
	// stores and fetches from nodes (control.Config.MaxContentBytes).
	// Defaults: s3api's.
	S3MaxObjectBytes    int64
	S3MaxMultipartBytes int64
	// CollectInterval and CollectGrace pace the coordinator's collector
	// of unreferenced content (coordinator.Config). Defaults: its.
	CollectInterval time.Duration
	CollectGrace    time.Duration
	// Logger default slog.Default().
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	if c.DataDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return c, fmt.Errorf("devnet: no DataDir and no user cache dir: %w", err)
		}
		c.DataDir = filepath.Join(dir, "verity", "devnet")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Nodes <= 0 {
		c.Nodes = 2
	}
	if c.NodeBasePort < 0 || c.NodeBasePort != 0 && c.NodeBasePort+3*c.Nodes-1 > 65535 {
		return c, fmt.Errorf("devnet: node base port %d: want 1..%d for %d nodes", c.NodeBasePort, 65535-3*c.Nodes+1, c.Nodes)
	}
	if c.Account == "" {
		c.Account = "default"
	}
	if c.Funding == 0 {
		c.Funding = AccountFunds
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Devnet is a gateway (coordinator, control plane and site edge on one
// listener) plus nodes serving one site, all in this process.
type Devnet struct {
	cfg     Config
	root    string
	carPath string // the demo's CAR, deployed by WaitReady
	bus     *events.Bus
	coord   *coordinator.Coordinator
	ctl     *control.Control
	gw      *gateway.Gateway
	s3      *s3api.Server // nil without Config.S3Listen
	nodes   []*node.Node

	opTokenPath string // the nodes' operator credential, for the console

	deployMu sync.Mutex
	deployed bool

	closeOnce sync.Once
	closeErr  error
}

// New builds the site's CAR, creates the nodes and binds the gateway.
// Nothing is served until Run; WaitReady deploys the site.
func New(ctx context.Context, cfg Config) (_ *Devnet, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	d := &Devnet{cfg: cfg}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	siteDir := cfg.DemoDir
	if siteDir == "" {
		siteDir = filepath.Join(cfg.DataDir, "site")
		if err := writeFS(siteDir, web.Demo); err != nil {
			return nil, fmt.Errorf("devnet: write demo site: %w", err)
		}
	}
	d.carPath = filepath.Join(cfg.DataDir, "site.car")
	carSize, err := writeCAR(ctx, siteDir, d.carPath, &d.root)
	if err != nil {
		return nil, fmt.Errorf("devnet: import %s: %w", siteDir, err)
	}
	log.Info("site imported", "dir", siteDir, "root", d.root, "carBytes", carSize)

	var table *asn.Table
	if cfg.ASNTable != "" {
		table, err = asn.LoadFile(cfg.ASNTable)
	} else {
		table, err = asn.Load(strings.NewReader(loopbackASN))
	}
	if err != nil {
		return nil, fmt.Errorf("devnet: ASN table: %w", err)
	}
	d.bus, err = events.Open(ctx, events.Config{
		StoreDir: filepath.Join(cfg.DataDir, "nats"),
		Name:     "devnet",
		Logger:   log.With("part", "events"),
	})
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	if err := d.startGateway(ctx, table); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	if err := d.fund(ctx); err != nil {
		return nil, err
	}
	opToken, err := d.operator(ctx)
	if err != nil {
		return nil, err
	}
	d.opTokenPath = filepath.Join(cfg.DataDir, "operator-token")
	if err := os.WriteFile(d.opTokenPath, []byte(opToken+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("devnet: operator credential: %w", err)
	}
	for i := 1; i <= cfg.Nodes; i++ {
		httpAddr, wtAddr, rtcAddr := "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		if p := cfg.NodeBasePort; p != 0 {
			p += 3 * (i - 1)
			httpAddr = "127.0.0.1:" + strconv.Itoa(p)
			wtAddr = "127.0.0.1:" + strconv.Itoa(p+1)
			rtcAddr = "127.0.0.1:" + strconv.Itoa(p+2)
		}
		n, err := node.New(node.Config{
			DataDir:          filepath.Join(cfg.DataDir, "node-"+strconv.Itoa(i)),
			HTTPAddr:         httpAddr,
			WebTransportAddr: wtAddr,
			WebRTC:           node.WebRTCConfig{Addr: rtcAddr},
			// WebRTCOnly: nodes as if behind NAT, reachable over
			// WebRTC alone.
			DisableWebTransport: cfg.WebRTCOnly,
			PublicHost:          cfg.NodeHost,
			Coordinator:         d.gw.URL(),
			OperatorToken:       opToken,
			Payments:            cfg.NodePayments,
			MaxEgress:           cfg.NodeMaxEgress,
			DisableBao:          cfg.NodeDisableBao,
			Logger:              log,
		})
		if err != nil {
			return nil, fmt.Errorf("devnet: node %d: %w", i, err)
		}
		d.nodes = append(d.nodes, n)
	}
	return d, nil
}

// startGateway composes the gateway as `verity gateway` does: a
// coordinator on the bus, the control plane, and the site edge serving
// both on one listener (bound first: the control plane sends nodes to its
// address for deployed CARs).
func (d *Devnet) startGateway(ctx context.Context, table *asn.Table) (err error) {
	log := d.cfg.Logger.With("part", "gateway")
	reg := prometheus.NewRegistry() // the coordinator's metrics and the edge's, at /metrics
	dataDir := filepath.Join(d.cfg.DataDir, "gateway")
	pay := d.cfg.GatewayPayments
	// The vouchers' key signs the coordinator's and the control plane's
	// requests to nodes too (coordinator.Config.RequestKey).
	if pay.Key, err = pay.SigningKey(dataDir); err != nil {
		return err
	}
	d.coord, err = coordinator.New(ctx, coordinator.Config{
		RequestKey:        pay.Key,
		Bus:               d.bus,
		Registerer:        reg,
		HeartbeatInterval: d.cfg.HeartbeatInterval,
		// Every node of a devnet is on this machine.
		AllowPrivateAddrs: true,
		Router:            coordinator.NewRouter(coordinator.RouterConfig{Table: table}),
		CollectInterval:   d.cfg.CollectInterval,
		CollectGrace:      d.cfg.CollectGrace,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	refs, err := s3api.NewReferences(d.bus)
	if err != nil {
		return err
	}
	d.coord.AddReferenceSource(refs)
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return err
	}
	d.ctl, err = control.New(ctx, control.Config{
		RequestKey:  pay.Key,
		Bus:         d.bus,
		Coordinator: d.coord,
		DataDir:     dataDir,
		PublicURL:   "http://" + ln.Addr().String(),
		Replicas:    min(d.cfg.Nodes, 2),
		Registerer:  reg,
		// Development: accounts are topped up by the faucet, webhooks
		// may call endpoints on this machine.
		Faucet:            true,
		AllowPrivateAddrs: true,
		// MaxDeployBytes: the default (1 GiB) unless the devnet needs more.
		MaxDeployBytes:  d.cfg.MaxDeployBytes,
		MaxContentBytes: s3api.MaxCARBytes(d.cfg.S3MaxObjectBytes, d.cfg.S3MaxMultipartBytes),
		Logger:          log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	d.gw, err = gateway.New(gateway.Config{
		Listener:   ln,
		Sites:      d.ctl.Sites(),
		Domains:    d.ctl.Domains(),
		Nodes:      d.coord,
		API:        d.ctl,
		Console:    web.Console,
		Bus:        d.bus,
		DataDir:    dataDir,
		Offers:     d.coord,
		Accounts:   d.coord,
		ScoreSink:  d.coord.Router(),
		Charges:    d.coord.Ledger(),
		Holds:      d.coord.Ledger(),
		Registerer: reg,
		Payments:   pay,
		// Every node of a devnet is on this machine.
		AllowPrivateAddrs: true,
		Logger:            log,
	})
	if err != nil || d.cfg.S3Listen == "" {
		return err
	}
	s3ln, err := net.Listen("tcp", d.cfg.S3Listen)
	if err != nil {
		return err
	}
	d.s3, err = s3api.New(s3api.Config{
		Listener: s3ln, Keys: d.ctl, Store: d.ctl, Bus: d.bus, DataDir: dataDir,
		Domain: d.cfg.S3Domain, Logger: log.With("api", "s3"),
		MaxObjectBytes: d.cfg.S3MaxObjectBytes, MaxMultipartBytes: d.cfg.S3MaxMultipartBytes,
		Charges: d.coord.Ledger(), Accounts: d.coord.Ledger(), StoragePrice: d.cfg.S3StoragePrice, StorageInterval: d.cfg.S3StorageInterval,
	})
	if err != nil {
		s3ln.Close()
		return err
	}
	d.ctl.SetBuckets(d.s3) // sites may follow a bucket
	return nil
}

// DevnetOperator is the operator the devnet's nodes join as.
const DevnetOperator = "devnet"

// operator issues a fresh credential for DevnetOperator (revoking the one
// of a previous run over the same DataDir) for the devnet's nodes.
func (d *Devnet) operator(ctx context.Context) (string, error) {
	err := d.coord.RevokeOperator(ctx, DevnetOperator)
	if err != nil && !errors.Is(err, coordinator.ErrUnknownOperator) {
		return "", fmt.Errorf("devnet: operator: %w", err)
	}
	tok, err := d.coord.CreateOperator(ctx, DevnetOperator)
	if err != nil {
		return "", fmt.Errorf("devnet: operator: %w", err)
	}
	return tok, nil
}

// fund creates the paying account if needed and, when it holds less than
// half of Funding, tops it up to Funding (the ledger's development faucet).
func (d *Devnet) fund(ctx context.Context) error {
	l := d.coord.Ledger()
	a, err := l.CreateAccount(ctx, d.cfg.Account, 0)
	if errors.Is(err, ledger.ErrAccountExists) {
		a, err = l.Account(ctx, d.cfg.Account)
	}
	if err != nil {
		return fmt.Errorf("devnet: account %s: %w", d.cfg.Account, err)
	}
	if a.Balance < int64(d.cfg.Funding/2) {
		if _, err := l.TopUp(ctx, d.cfg.Account, d.cfg.Funding-uint64(max(a.Balance, 0))); err != nil {
			return fmt.Errorf("devnet: top up %s: %w", d.cfg.Account, err)
		}
	}
	return nil
}

// Run serves until ctx is done, then stops every part.
//
// The whole network stops at once, so the coordinator stops first: nodes
// leaving afterwards are not a loss to repair (no re-replication, no
// under-replication warnings on Ctrl-C).
func (d *Devnet) Run(ctx context.Context) error {
	nodeCtx, stopNodes := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNodes()
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range d.nodes {
		g.Go(func() error { return n.Run(nodeCtx) })
	}
	// A node that fails ends gctx, so the gateway stops and then the
	// other nodes.
	if d.s3 != nil {
		g.Go(func() error { return d.s3.Run(gctx) })
	}
	g.Go(func() error {
		defer stopNodes()
		err := d.gw.Run(gctx)
		// The edge charges what it served to the coordinator's ledger as
		// it closes: before the coordinator.
		d.gw.Close()
		d.coord.Close()
		return err
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// WaitReady waits until every node has joined the coordinator,
// then deploys the site through the gateway's deploy path (verify, place
// on the nodes, which fetch, verify and pin it) and waits until it is
// published, so the first visit is served. Run must be running. On a
// rerun over the same DataDir the nodes already hold the site and nothing
// new is published.
func (d *Devnet) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		live, err := d.coord.LiveNodes(ctx)
		if err != nil {
			return err
		}
		if len(live) >= len(d.nodes) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devnet: %d of %d nodes joined: %w", len(live), len(d.nodes), ctx.Err())
		case <-t.C:
		}
	}
	if err := d.deployOnce(ctx); err != nil {
		return err
	}
	for {
		if site, err := d.ctl.Sites().Site(ctx, SiteName); err == nil && site.Root == d.root {
			return nil
		}
		select {
		case <-ctx.Done():
			st, _, _ := d.ctl.DeployStatus(context.Background(), SiteName)
			return fmt.Errorf("devnet: site %s not published (deploy %s): %w", SiteName, st.State, ctx.Err())
		case <-t.C:
		}
	}
}

// deployOnce deploys the site's CAR the first time it is called.
func (d *Devnet) deployOnce(ctx context.Context) error {
	d.deployMu.Lock()
	defer d.deployMu.Unlock()
	if d.deployed {
		return nil
	}
	f, err := os.Open(d.carPath)
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	defer f.Close()
	if _, err := d.ctl.DeployFor(ctx, SiteName, d.cfg.Account, f); err != nil {
		return fmt.Errorf("devnet: deploy: %w", err)
	}
	d.deployed = true
	return nil
}

// AccountFunds is what the faucet credits the devnet's account by
// default, whenever it has less than half of it: 1 TiB of verified
// delivery.
const AccountFunds = 1 << 40

// writeCAR imports dir into a CAR file at path and sets *root.
func writeCAR(ctx context.Context, dir, path string, root *string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	c, err := importer.WriteCAR(ctx, dir, f, importer.Options{})
	if err != nil {
		return 0, err
	}
	*root = c.String()
	n, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	return n, f.Sync()
}

// Close stops the nodes, the gateway (site edge, control plane,
// coordinator) and the event bus. It is idempotent.
func (d *Devnet) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		for _, n := range d.nodes {
			errs = append(errs, n.Close())
		}
		// The edge first: it charges what it served to the coordinator's
		// ledger as it closes.
		if d.gw != nil {
			errs = append(errs, d.gw.Close())
		}
		if d.s3 != nil {
			errs = append(errs, d.s3.Close())
		}
		if d.ctl != nil {
			errs = append(errs, d.ctl.Close())
		}
		if d.coord != nil {
			errs = append(errs, d.coord.Close())
		}
		if d.bus != nil {
			errs = append(errs, d.bus.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// SiteURL is the origin URL of site name, e.g. http://demo.localhost:8080/.
func (d *Devnet) SiteURL(name string) string { return d.gw.SiteURL(name) }

// S3 is the devnet's S3 API, nil without Config.S3Listen.
func (d *Devnet) S3() *s3api.Server { return d.s3 }

// Gateway is the devnet's site edge.
func (d *Devnet) Gateway() *gateway.Gateway { return d.gw }

// Control is the devnet's control plane (sites, deploys, accounts).
func (d *Devnet) Control() *control.Control { return d.ctl }

// Coordinator is the devnet's coordinator: node registry, placements,
// routing and the ledger.
func (d *Devnet) Coordinator() *coordinator.Coordinator { return d.coord }

// Nodes are the devnet's storage nodes.
func (d *Devnet) Nodes() []*node.Node { return d.nodes }

// Root is the root CID of the published site.
func (d *Devnet) Root() string { return d.root }

// OperatorTokenPath is the file holding the credential of
// DevnetOperator, whose nodes the devnet runs: an operator signs in to
// the console with it. A fresh one is issued on every start.
func (d *Devnet) OperatorTokenPath() string { return d.opTokenPath }

// DataDir is the directory the devnet keeps its data in.
func (d *Devnet) DataDir() string { return d.cfg.DataDir }

// Sites is the devnet's site store (the sites KV bucket): Publish and
// Rollback change what a site serves.
func (d *Devnet) Sites() *control.KVSites { return d.ctl.Sites() }

// Bus is the devnet's event bus.
func (d *Devnet) Bus() *events.Bus { return d.bus }

// writeFS replaces dir with the files of fsys.
func writeFS(dir string, fsys fs.FS) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if de.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
