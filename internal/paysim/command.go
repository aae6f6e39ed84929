package paysim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// RunCommand is `verity sim payments`: it parses args into a Config, runs
// the simulation and prints the table to stdout.
func RunCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim payments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	fs.IntVar(&c.Nodes, "nodes", 1000, "nodes")
	fs.IntVar(&c.Accounts, "accounts", 2000, "accounts")
	fs.IntVar(&c.AccountsPerNode, "accounts-per-node", 20, "accounts each node serves")
	fs.Float64Var(&c.NodeGbps, "gbps", 10, "delivery rate of a node at full load, Gbit/s")
	fs.Float64Var(&c.Utilization, "utilization", 1, "mean fraction of that rate used")
	fs.DurationVar(&c.Duration, "duration", 5*time.Minute, "simulated time")
	fs.DurationVar(&c.PublishEvery, "publish", 5*time.Second, "how often balances are published to nodes")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed")
	fs.Uint64Var(&c.NodeCap, "node-cap", 16<<20, "voucher per-node cap, bytes")
	fs.IntVar(&c.Attackers, "attackers", 10, "hostile clients with a node of their own (negative: none)")
	fs.IntVar(&c.Sessions, "sessions", 1_000_000, "concurrent visitor sessions, each holding a voucher")
	fs.Uint64Var(&c.VoucherBudget, "voucher-budget", 64<<20, "voucher budget held on the account, bytes")
	calibrate := fs.Bool("calibrate", true, "measure receipt verifications per core on this machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim payments: unexpected arguments %q", fs.Args())
	}
	if *calibrate {
		c.VerifyPerCore = Calibrate(300 * time.Millisecond)
	}
	c.Out = stdout
	Run(ctx, c)
	return ctx.Err()
}

// Calibrate measures how many receipts one core verifies per second with
// payment.Tracker (decode, checks, one ed25519 verification), for about d.
func Calibrate(d time.Duration) float64 {
	h := sha256.Sum256([]byte("paysim"))
	gw := ed25519.NewKeyFromSeed(h[:])
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(h[:])})
	if err != nil {
		return 0
	}
	now := time.Now()
	var node payment.NodeKey
	v := payment.Voucher{Account: "sim", Session: s.SessionKey(), Budget: 1 << 62, NodeCap: 1 << 62,
		Nodes: []payment.NodeTag{payment.TagOf(node)}, Expires: now.Add(time.Hour)}
	if v.Sign(gw) != nil || s.SetVoucher(v) != nil {
		return 0
	}
	const n = 256
	enc := make([][]byte, n)
	for i := range enc {
		r, _, err := s.Verified(node, payment.BlockSize)
		if err != nil {
			return 0
		}
		enc[i], _ = r.MarshalBinary()
	}
	keys := payment.NewKeySet(gw.Public().(ed25519.PublicKey))
	count := 0
	start := time.Now()
	for time.Since(start) < d {
		tr, err := payment.NewTracker(v, keys, node, now)
		if err != nil {
			return 0
		}
		for _, b := range enc {
			if _, err := tr.AcceptBinary(b, now); err != nil {
				return 0
			}
		}
		count += n
	}
	return float64(count) / time.Since(start).Seconds()
}
