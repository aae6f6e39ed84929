package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/internal/siteclient"
)

// runNodes lists the nodes a gateway knows (admin token).
func runNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: verity nodes list [--json] [--gateway URL] [--admin-token T]")
	}
	if len(args) == 0 || isHelp(args[0]) {
		usage()
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] != "list" {
		usage()
		return fmt.Errorf("unknown nodes command %q: %w", args[0], errUsage)
	}
	fl := flag.NewFlagSet("nodes list", flag.ContinueOnError)
	fl.SetOutput(stderr)
	gw := gatewayFlag(fl)
	admin := adminTokenFlag(fl)
	asJSON := fl.Bool("json", false, "print the gateway's JSON answer")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("nodes list: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	c := siteclient.New(siteclient.Config{Gateway: *gw, Token: *admin})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(nodes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tOPERATOR\tREGION\tVERSION\tHOLDINGS\tBLOCKS\tFREE\tLAST HEARTBEAT")
	now := time.Now()
	for _, n := range nodes {
		state := n.State
		if n.Reason != "" && n.State != "live" {
			state += " (" + n.Reason + ")"
		}
		hold := fmt.Sprint(n.Holdings)
		if n.Auditing+n.Pending > 0 {
			hold += fmt.Sprintf(" +%d auditing +%d pending", n.Auditing, n.Pending)
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s ago\n", n.ID, state, dash(n.Operator), dash(n.Region), dash(n.Version),
			hold, n.Blocks, humanBytes(n.FreeDisk), now.Sub(n.LastSeen).Round(time.Second))
	}
	return tw.Flush()
}
