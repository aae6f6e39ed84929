package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/verity-cdn/verity/node"
)

// runNode runs a storage node until ctx is done.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("node", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		cfg      node.Config
		logLevel slog.Level
		cars     []string
	)
	fl.StringVar(&cfg.DataDir, "data", "", "data directory (default: <user cache dir>/verity/node)")
	fl.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:4001", "HTTP (trustless gateway) listen address, TCP")
	fl.StringVar(&cfg.WebTransportAddr, "webtransport", "127.0.0.1:4433", "WebTransport listen address, UDP")
	fl.StringVar(&cfg.PublicHost, "public-host", "127.0.0.1", "IP address put in the node's published URLs")
	fl.Func("car", "import this CAR file before serving (repeatable); every block is verified, a bad CAR stores nothing", func(v string) error {
		cars = append(cars, v)
		return nil
	})
	fl.StringVar(&cfg.Coordinator, "coordinator", "", "gateway/coordinator URL to join, e.g. https://gw.example (default: join none)")
	fl.StringVar(&cfg.Region, "region", "", "region reported to the coordinator, e.g. NL or eu-west")
	fl.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("node: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	if cfg.DataDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("node: no --data and no user cache dir: %w", err)
		}
		cfg.DataDir = filepath.Join(dir, "verity", "node")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	cfg.Logger = log

	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	for _, path := range cars {
		if err := importCARFile(ctx, n, path); err != nil {
			return err
		}
		log.Info("imported CAR", "file", path)
	}
	log.Info("node started", "id", n.ID(), "data", n.DataDir(), "http", n.HTTPURL(), "webtransport", n.WebTransportURL())
	fmt.Fprintf(stdout, "id: %s\nhttp: %s\nwebtransport: %s\n", n.ID(), n.HTTPURL(), n.WebTransportURL())
	if err := n.Run(ctx); err != nil {
		return err
	}
	return n.Close()
}

func importCARFile(ctx context.Context, n *node.Node, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("node: --car: %w", err)
	}
	defer f.Close()
	roots, err := n.ImportCAR(ctx, f)
	if err != nil {
		return fmt.Errorf("node: --car %s: %w", path, err)
	}
	// Imported by the operator: kept whatever the coordinator places here.
	return n.PinLocal(roots...)
}
