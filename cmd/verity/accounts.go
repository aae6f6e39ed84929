package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/keyfile"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/siteclient"
	"github.com/verity-cdn/verity/node"
)

const accountsUsage = `usage: verity accounts create NAME [--freeze-below BYTES]
       verity accounts topup NAME BYTES        (development faucet: the gateway must run with --faucet)
       verity accounts balance NAME
       verity accounts statement NAME [--since RFC3339|DURATION] [--type T] [--limit N]
       verity accounts dashboard NAME
       verity accounts list
  common flags: [--gateway URL] [--admin-token T] [--json]
  BYTES: a number of bytes, or with a unit: 512MiB, 10GiB, 1TiB`

// runAccounts manages accounts through a gateway's accounts API (admin
// token): create, topup (the development faucet), balance, statement,
// dashboard, list.
func runAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := newAPICommand("accounts", accountsUsage, args, stderr)
	if cmd == nil {
		return err
	}
	fl := cmd.fl
	asJSON := fl.Bool("json", false, "print the gateway's JSON answer")
	freeze := fl.String("freeze-below", "0", "create: freezing threshold in bytes (0: the ledger's default, 256MiB)")
	since := fl.String("since", "", "statement: entries since this time (RFC 3339) or this long ago (e.g. 24h)")
	typ := fl.String("type", "", "statement: only create, topup, settle or charge entries")
	limit := fl.Int("limit", 0, "statement: the newest N entries (default 1000)")
	if err := cmd.parse(args); err != nil {
		return err
	}
	pos, want := cmd.pos, cmd.want
	c, ctx, cancel := cmd.client(ctx, "")
	defer cancel()
	show := func(v any, text func(io.Writer)) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text(stdout)
		return nil
	}
	switch cmd.sub {
	case "create":
		if err := want(1, "NAME"); err != nil {
			return err
		}
		fb, err := parseBytes(*freeze)
		if err != nil {
			return fmt.Errorf("accounts create: --freeze-below: %w: %w", err, errUsage)
		}
		a, err := c.CreateAccount(ctx, pos[0], int64(fb))
		if err != nil {
			return err
		}
		return show(a, func(w io.Writer) {
			fmt.Fprintf(w, "account %s created; frozen until its balance reaches %s\n", a.Name, humanBytes(a.FreezeBelow))
		})
	case "topup":
		if err := want(2, "NAME BYTES"); err != nil {
			return err
		}
		n, err := parseBytes(pos[1])
		if err != nil || n == 0 {
			return fmt.Errorf("accounts topup: BYTES %q: want a positive number of bytes: %w", pos[1], errUsage)
		}
		a, err := c.TopUp(ctx, pos[0], n)
		if err != nil {
			return err
		}
		return show(a, func(w io.Writer) { printBalance(w, a) })
	case "balance":
		if err := want(1, "NAME"); err != nil {
			return err
		}
		a, err := c.Account(ctx, pos[0])
		if err != nil {
			return err
		}
		return show(a, func(w io.Writer) { printBalance(w, a) })
	case "list":
		if err := want(0, "no arguments"); err != nil {
			return err
		}
		as, err := c.Accounts(ctx)
		if err != nil {
			return err
		}
		return show(as, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tBALANCE\tFROZEN\tTOPPED UP\tSETTLED\tCHARGED")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%d\t%v\t%d\t%d\t%d\n", a.Name, a.Balance, a.Frozen, a.ToppedUp, a.Spent, a.Charged)
			}
			tw.Flush()
		})
	case "statement":
		if err := want(1, "NAME"); err != nil {
			return err
		}
		var from time.Time
		if *since != "" {
			if d, err := time.ParseDuration(*since); err == nil {
				from = time.Now().Add(-d)
			} else if from, err = time.Parse(time.RFC3339, *since); err != nil {
				return fmt.Errorf("accounts statement: --since %q: want RFC 3339 or a duration: %w", *since, errUsage)
			}
		}
		st, err := c.Statement(ctx, pos[0], from, *typ, *limit)
		if err != nil {
			return err
		}
		return show(st, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTYPE\tBYTES\tBALANCE\tBY\tSITES")
			for _, e := range st.Entries {
				by := e.Node + e.Gateway
				if by == "" {
					by = "-"
				}
				sign := "-"
				if e.Type == api.EntryTopUp || e.Type == api.EntryCreate {
					sign = "+"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s%d\t%d\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Type, sign, e.Bytes, e.Balance, by, formatSites(e.Sites))
			}
			tw.Flush()
		})
	case "dashboard":
		if err := want(1, "NAME"); err != nil {
			return err
		}
		d, err := c.Dashboard(ctx, pos[0])
		if err != nil {
			return err
		}
		return show(d, func(w io.Writer) {
			printBalance(w, d.Account)
			fmt.Fprintf(w, "spent %d bytes: %d settled to nodes, %d charged by gateways\n", d.Spend.Total, d.Spend.Nodes, d.Spend.Gateway)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tNODES\tGATEWAY")
			for _, s := range sortedMapKeys(d.Sites) {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", s, d.Sites[s].Nodes, d.Sites[s].Gateway)
			}
			fmt.Fprintln(tw, "NODE\tPAID\t")
			for _, n := range sortedMapKeys(d.Nodes) {
				fmt.Fprintf(tw, "%s\t%d\t\n", n, d.Nodes[n])
			}
			tw.Flush()
		})
	}
	fmt.Fprintln(stderr, accountsUsage)
	return fmt.Errorf("unknown accounts command %q: %w", cmd.sub, errUsage)
}

func printBalance(w io.Writer, a api.Account) {
	state := "active"
	if a.Frozen {
		state = "FROZEN (below " + strconv.FormatInt(a.FreezeBelow, 10) + ")"
	}
	fmt.Fprintf(w, "%s: balance %d bytes (%s), %s; topped up %d, settled %d, charged %d\n",
		a.Name, a.Balance, humanBytes(a.Balance), state, a.ToppedUp, a.Spent, a.Charged)
	if a.Held > 0 {
		fmt.Fprintf(w, "  held %d bytes (%s) by %d unexpired vouchers; available %d\n",
			a.Held, humanBytes(int64(min(a.Held, 1<<62))), a.Sessions, a.Balance-int64(min(a.Held, 1<<62)))
	}
}

func formatSites(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range sortedMapKeys(m) {
		parts = append(parts, k+"="+strconv.FormatUint(m[k], 10))
	}
	return strings.Join(parts, ",")
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseBytes reads "1073741824", "512MiB", "10GiB", "1TiB", "4KiB".
func parseBytes(s string) (uint64, error) {
	units := []struct {
		suffix string
		mul    uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	mul := uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(n), u.mul
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<62)/mul {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	return n * mul, nil
}

// runNodeEarnings prints what the ledger credited a node: the node whose
// key is in --data (the request is signed with it), or --node ID with the
// admin token.
func runNodeEarnings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("node earnings", flag.ContinueOnError)
	fl.SetOutput(stderr)
	gw := gatewayFlag(fl)
	admin := adminTokenFlag(fl)
	dataDir := fl.String("data", "", "the node's data directory, holding identity.key (default: <user cache dir>/verity/node)")
	id := fl.String("node", "", "node id, read with the admin token instead of the node key")
	asJSON := fl.Bool("json", false, "print the gateway's JSON answer")
	nodeHTTP := fl.String("http", "http://127.0.0.1:4001", "the node's HTTP address, whose status tells what is pending settlement")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("node earnings: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	var key ed25519.PrivateKey
	if *id == "" {
		dir := *dataDir
		if dir == "" {
			var err error
			if dir, err = defaultDataDir("node"); err != nil {
				return err
			}
		}
		var err error
		if key, err = keyfile.Load(filepath.Join(dir, "identity.key")); err != nil {
			return fmt.Errorf("node earnings: %w (or pass --node ID with --admin-token)", err)
		}
		*id = noderecord.NodeIDFromKey(key.Public().(ed25519.PublicKey))
	}
	cfg := siteclient.Config{Gateway: *gw, Token: *admin}
	if key != nil {
		cfg.Sign = func(r *http.Request) { nodeproto.SignContentRequest(r, key, time.Now()) }
	}
	c := siteclient.New(cfg)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	e, err := c.Earnings(ctx, *id)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	}
	fmt.Fprintf(stdout, "node %s: settled %d bytes (%s)\n", e.Node, e.Earned, humanBytes(int64(e.Earned)))
	// Pending: the receipts the node keeps, from its status (loopback).
	var pending map[string]uint64
	var pendingTotal uint64
	if body, err := fetchNodeStatus(ctx, *nodeHTTP); err != nil {
		fmt.Fprintf(stderr, "pending settlement: unknown (%v)\n", err)
	} else {
		var st node.StatusReport
		if err := json.Unmarshal(body, &st); err == nil && st.ID == e.Node {
			pending, pendingTotal = st.Receipts.PendingBy, st.Receipts.PendingBytes
			fmt.Fprintf(stdout, "pending settlement: %d bytes (%s) in receipts the node holds\n", pendingTotal, humanBytes(int64(pendingTotal)))
		} else {
			fmt.Fprintf(stderr, "pending settlement: unknown (the node at %s is not %s)\n", *nodeHTTP, e.Node)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSETTLED\tPENDING")
	accounts := sortedMapKeys(e.From)
	for a := range pending {
		if _, ok := e.From[a]; !ok {
			accounts = append(accounts, a)
		}
	}
	for _, a := range accounts {
		p := "-"
		if pending != nil {
			p = fmt.Sprint(pending[a])
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", a, e.From[a], p)
	}
	return tw.Flush()
}
