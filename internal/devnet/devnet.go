package devnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
	"github.com/verity-cdn/verity/web"
)

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
	// DemoDir is the site directory to publish. Default: the embedded demo
	// site, written to DataDir/site first.
	DemoDir string
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Devnet is a gateway plus nodes serving one site, all in this process.
type Devnet struct {
	cfg   Config
	root  string
	nodes []*node.Node
	gw    *gateway.Gateway
	sites *gateway.StaticSites

	closeOnce sync.Once
	closeErr  error
}

// New creates the nodes, imports the site into every one of them and binds
// the gateway. Nothing is served until Run.
func New(ctx context.Context, cfg Config) (d *Devnet, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	d = &Devnet{cfg: cfg}
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
	var car bytes.Buffer
	root, err := importer.WriteCAR(ctx, siteDir, &car, importer.Options{})
	if err != nil {
		return nil, fmt.Errorf("devnet: import %s: %w", siteDir, err)
	}
	d.root = root.String()
	log.Info("site imported", "dir", siteDir, "root", d.root, "carBytes", car.Len())

	for i := 1; i <= cfg.Nodes; i++ {
		n, err := node.New(node.Config{
			DataDir:          filepath.Join(cfg.DataDir, "node-"+strconv.Itoa(i)),
			HTTPAddr:         "127.0.0.1:0",
			WebTransportAddr: "127.0.0.1:0",
			Logger:           log,
		})
		if err != nil {
			return nil, fmt.Errorf("devnet: node %d: %w", i, err)
		}
		d.nodes = append(d.nodes, n)
		if _, err := n.ImportCAR(ctx, bytes.NewReader(car.Bytes())); err != nil {
			return nil, fmt.Errorf("devnet: node %d: import: %w", i, err)
		}
	}

	d.sites = gateway.NewStaticSites(map[string]string{SiteName: d.root})
	records := make(gateway.StaticNodes, len(d.nodes))
	for i, n := range d.nodes {
		records[i] = func() noderecord.Signed { return n.Record() }
	}
	d.gw, err = gateway.New(gateway.Config{
		Listen: cfg.Listen,
		Sites:  d.sites,
		Nodes:  records,
		Logger: log.With("part", "gateway"),
	})
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	return d, nil
}

// Run serves until ctx is done, then stops every part.
func (d *Devnet) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range d.nodes {
		g.Go(func() error { return n.Run(ctx) })
	}
	g.Go(func() error { return d.gw.Run(ctx) })
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Close stops the gateway and the nodes. It is idempotent.
func (d *Devnet) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.gw != nil {
			errs = append(errs, d.gw.Close())
		}
		for _, n := range d.nodes {
			errs = append(errs, n.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// SiteURL is the origin URL of site name, e.g. http://demo.localhost:8080/.
func (d *Devnet) SiteURL(name string) string { return d.gw.SiteURL(name) }

// Gateway is the devnet's gateway.
func (d *Devnet) Gateway() *gateway.Gateway { return d.gw }

// Nodes are the devnet's storage nodes.
func (d *Devnet) Nodes() []*node.Node { return d.nodes }

// Root is the root CID of the published site.
func (d *Devnet) Root() string { return d.root }

// Sites is the devnet's site table: Set publishes a new root.
func (d *Devnet) Sites() *gateway.StaticSites { return d.sites }

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
