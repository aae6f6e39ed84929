package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/gateway"
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
	fl.IntVar(&cfg.NodeBasePort, "node-ports", 0, "fixed ports for the nodes: node i listens on BASE+3(i-1) for HTTP (TCP), the next port for WebTransport and the one after for WebRTC (UDP) (default: ephemeral ports)")
	fl.StringVar(&cfg.ASNTable, "asn-table", "", "prefix → ASN table for routing, ip2asn TSV or \"prefix ASN [country]\" lines (default: loopback as one network)")
	fl.StringVar(&cfg.S3Listen, "s3-listen", "", "serve the S3-compatible API on this address too, e.g. 127.0.0.1:9000 (docs/storage.md; default: off)")
	fl.StringVar(&cfg.S3Domain, "s3-domain", "", "with --s3-listen: answer virtual-hosted-style requests for BUCKET.<domain> (e.g. s3.localhost)")
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The URL is printed once every node has joined, so the first visit is
	// served; a Run that ends early ends the wait too.
	wctx, wcancel := context.WithTimeout(ctx, devnetReadyTimeout)
	defer wcancel()
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx)
		wcancel()
	}()
	if err := d.WaitReady(wctx); err != nil {
		cancel()
		return errors.Join(err, <-done)
	}
	fmt.Fprintf(stdout, "%s: %s\n", devnet.SiteName, d.SiteURL(devnet.SiteName))
	printDevnetGuide(stdout, d)
	return <-done
}

// printDevnetGuide tells where the admin token is and how to publish a
// directory of one's own on this devnet.
func printDevnetGuide(w io.Writer, d *devnet.Devnet) {
	gw := d.Gateway().URL()
	self := "verity"
	if strings.Contains(os.Args[0], "/") {
		self = os.Args[0] // e.g. ./bin/verity, as `make run` starts it
	}
	fmt.Fprintf(w, "gateway: %s\n", gw)
	for i, n := range d.Nodes() {
		fmt.Fprintf(w, "node %d: %s (id %s)\n", i+1, n.HTTPURL(), n.ID())
	}
	if s := d.S3(); s != nil {
		fmt.Fprintf(w, "s3: %s (keys: %s keys create --account default --gateway %s)\n", s.URL(), self, gw)
	}
	fmt.Fprintf(w, "console: %s%s/ (sign in with the admin token, or the nodes' operator credential in %s)\n",
		strings.TrimRight(gw, "/"), gateway.ConsolePath, d.OperatorTokenPath())
	if p := d.Control().AdminTokenPath(); p != "" {
		fmt.Fprintf(w, "admin token: %s\n", p)
		fmt.Fprintf(w, `
To publish a directory of your own (in another terminal):
  export VERITY_ADMIN_TOKEN=$(cat %[1]s)
  export VERITY_TOKEN=$(%[2]s sites create mysite --gateway %[3]s)
  %[2]s deploy ./my-site --site mysite --gateway %[3]s
and open %[4]s
Ctrl-C stops the devnet; its data stays in %[5]s for the next run.
`, p, self, gw, d.SiteURL("mysite"), d.DataDir())
	}
}

// devnetReadyTimeout bounds the wait for the devnet's nodes to join.
const devnetReadyTimeout = 30 * time.Second
