package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/verity-cdn/verity/node"
)

// runNode runs a storage node until ctx is done.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "earnings" {
		return runNodeEarnings(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "status" {
		return runNodeStatus(ctx, args[1:], stdout, stderr)
	}
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
	var iceURLs []string
	var iceUser, iceCred string
	fl.BoolVar(&cfg.StatusPublic, "status-public", false, "serve the status page (GET / and /status: holdings, receipts, recent errors) to every client, not only loopback")
	fl.BoolVar(&cfg.WebRTC.Disabled, "no-webrtc", false, "do not serve WebRTC")
	fl.BoolVar(&cfg.DisableWebTransport, "no-webtransport", false, "do not serve or publish WebTransport (behind NAT: WebRTC only)")
	fl.BoolVar(&cfg.DisableBao, "no-bao", false, "answer streams with the plain CAR even to workers that accept bao16 (saves its hashing; workers then verify whole blocks)")
	fl.StringVar(&cfg.WebRTC.Addr, "webrtc", "127.0.0.1:4434", "WebRTC listen address, UDP, shared by all peers")
	fl.Func("webrtc-public-ip", "public IP put in WebRTC answers instead of the local address (1:1 NAT with --webrtc forwarded; repeatable)", func(v string) error {
		cfg.WebRTC.PublicIPs = append(cfg.WebRTC.PublicIPs, v)
		return nil
	})
	fl.Func("ice-server", "STUN or TURN server URL for WebRTC, e.g. stun:stun.example:3478 (repeatable)", func(v string) error {
		iceURLs = append(iceURLs, v)
		return nil
	})
	fl.StringVar(&iceUser, "ice-username", "", "username for the TURN servers of --ice-server")
	fl.StringVar(&iceCred, "ice-credential", "", "credential for the TURN servers of --ice-server")
	fl.StringVar(&cfg.Coordinator, "coordinator", "", "gateway/coordinator URL to join, e.g. https://gw.example (default: join none)")
	opToken := fl.String("operator-token", "", "the operator credential (vop_NAME.SECRET) the coordinator requires to join; prefer --operator-token-file or env VERITY_OPERATOR_TOKEN")
	opTokenFile := fl.String("operator-token-file", "", "file holding the operator credential (from the gateway's admin: verity operators create NAME)")
	fl.StringVar(&cfg.Region, "region", "", "region reported to the coordinator, e.g. NL or eu-west")
	fl.BoolVar(&cfg.Payments.Require, "require-payment", false, "refuse streams that carry no voucher (402 payment_required); on HTTP, serve /ipfs/ to the platform's signed requests only")
	fl.Uint64Var(&cfg.Payments.CreditWindow, "credit-window", 0, "bytes a stream may deliver ahead of the receipts (default 1 MiB, at least 512 KiB)")
	fl.DurationVar(&cfg.Payments.ReceiptTimeout, "receipt-timeout", 0, "how long a stream with its credit window spent waits for a receipt (default 10s)")
	fl.Float64Var(&cfg.Payments.Policy.Fraction, "settle-fraction", 0, "settle an account once unsettled receipts exceed this fraction of balance/nodes (default 0.25)")
	fl.DurationVar(&cfg.Payments.Policy.MaxInterval, "settle-interval", 0, "settle unsettled receipts at least this often (default 5m)")
	fl.Uint64Var(&cfg.Payments.Policy.MaxBytes, "settle-max-bytes", 0, "settle once this many bytes are unsettled, whatever the balance (default: no bound)")
	fl.Func("max-egress", "cap on the content bytes sent per second, all clients together, e.g. 20MB, 100MiB, 500k (default: unlimited)", func(v string) error {
		n, err := parseRate(v)
		cfg.MaxEgress = n
		return err
	})
	fl.Func("max-storage", "storage offered to the network, e.g. 500GB, 2TiB (default: the data directory's filesystem): new roots go to the nodes with the most left, and pin orders beyond it are refused", func(v string) error {
		n, err := parseSize(v)
		cfg.Capacity = n
		return err
	})
	fl.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	if err := fl.Parse(args); err != nil {
		return err
	}
	for _, u := range iceURLs {
		cfg.WebRTC.ICEServers = append(cfg.WebRTC.ICEServers, webrtc.ICEServer{URLs: []string{u}, Username: iceUser, Credential: iceCred})
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("node: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	tok, err := operatorToken(*opToken, *opTokenFile)
	if err != nil {
		return err
	}
	cfg.OperatorToken = tok
	if cfg.DataDir == "" {
		var err error
		if cfg.DataDir, err = defaultDataDir("node"); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	cfg.Logger = log
	if v, rev := buildVersion(); v != "" {
		cfg.Version = v + " " + rev
	}

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
	log.Info("node started", "id", n.ID(), "data", n.DataDir(), "http", n.HTTPURL(), "webtransport", n.WebTransportURL(), "webrtc", n.WebRTCAddr())
	fmt.Fprintf(stdout, "id: %s\nhttp: %s\nwebtransport: %s\n", n.ID(), n.HTTPURL(), n.WebTransportURL())
	if err := n.Run(ctx); err != nil {
		return err
	}
	return n.Close()
}

// operatorToken is the operator credential from --operator-token,
// --operator-token-file or VERITY_OPERATOR_TOKEN, in that order.
func operatorToken(flagValue, file string) (string, error) {
	switch {
	case flagValue != "":
		return strings.TrimSpace(flagValue), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("node: --operator-token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(os.Getenv("VERITY_OPERATOR_TOKEN")), nil
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
