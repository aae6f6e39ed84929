package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const nodesUsage = "usage: verity nodes list [--json] [--gateway URL] [--admin-token T]"

// runNodes lists the nodes a gateway knows (admin token).
func runNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := newAPICommand("nodes", nodesUsage, args, stderr)
	if cmd == nil {
		return err
	}
	if cmd.sub != "list" {
		fmt.Fprintln(stderr, nodesUsage)
		return fmt.Errorf("unknown nodes command %q: %w", cmd.sub, errUsage)
	}
	asJSON := cmd.fl.Bool("json", false, "print the gateway's JSON answer")
	if err := cmd.parse(args); err != nil {
		return err
	}
	if err := cmd.want(0, "no arguments"); err != nil {
		return err
	}
	c, ctx, cancel := cmd.client(ctx, "")
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
