package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/verity-cdn/verity/internal/devnet"
)

// runDevnet runs a gateway, storage nodes and the demo site in this process.
// It prints one line, "demo: <url>", on stdout once everything is up.
func runDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("devnet", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg devnet.Config
	fl.StringVar(&cfg.DataDir, "data", "", "data directory (default: <user cache dir>/verity/devnet)")
	fl.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "gateway listen address")
	fl.IntVar(&cfg.Nodes, "nodes", 2, "number of storage nodes")
	fl.StringVar(&cfg.DemoDir, "site", "", "directory to publish as site demo (default: the built-in demo site)")
	fl.StringVar(&cfg.ASNTable, "asn-table", "", "prefix → ASN table for routing, ip2asn TSV or \"prefix ASN [country]\" lines (default: loopback as one network)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("devnet: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	d, err := devnet.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, "%s: %s\n", devnet.SiteName, d.SiteURL(devnet.SiteName))
	return d.Run(ctx)
}
