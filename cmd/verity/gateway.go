package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/cid"
)

// runGateway runs the HTTP gateway for site origins, fetching from the
// nodes named by --node.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		cfg   gateway.Config
		sites = map[string]string{}
		nodes []string
	)
	fl.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "listen address")
	fl.StringVar(&cfg.Domain, "domain", "localhost", "parent domain of site origins (site NAME answers on NAME.<domain>)")
	fl.Func("site", "site as NAME=ROOT_CID (repeatable)", func(v string) error {
		name, root, ok := strings.Cut(v, "=")
		if !ok || root == "" || !gateway.ValidSiteName(name) {
			return fmt.Errorf("want NAME=CID with NAME a lower-case DNS label, got %q", v)
		}
		if _, err := cid.Parse(root); err != nil {
			return fmt.Errorf("site %s: root %q is not a CID: %w", name, root, err)
		}
		sites[name] = root
		return nil
	})
	fl.Func("node", "storage node HTTP base URL, e.g. http://127.0.0.1:4001 (repeatable)", func(v string) error {
		nodes = append(nodes, v)
		return nil
	})
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("gateway: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("gateway: at least one --node is required: %w", errUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = log
	cfg.Sites = gateway.NewStaticSites(sites)
	cfg.Nodes = gateway.NewHTTPNodes(gateway.HTTPNodesConfig{URLs: nodes, Logger: log})
	g, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	log.Info("gateway listening", "url", g.URL())
	for name := range sites {
		fmt.Fprintf(stdout, "%s: %s\n", name, g.SiteURL(name))
	}
	return g.Run(ctx)
}
