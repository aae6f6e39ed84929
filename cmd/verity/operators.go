package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const operatorsUsage = `usage: verity operators create NAME   (prints the operator's credential, shown only once)
       verity operators revoke NAME   (its nodes are disconnected and can no longer join)
       verity operators list
  common flags: [--gateway URL] [--admin-token T]`

// runOperators manages node operators' credentials through a gateway's
// API (admin token): create, revoke, list.
func runOperators(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := newAPICommand("operators", operatorsUsage, args, stderr)
	if cmd == nil {
		return err
	}
	if err := cmd.parse(args); err != nil {
		return err
	}
	c, ctx, cancel := cmd.client(ctx, "")
	defer cancel()
	switch cmd.sub {
	case "create":
		name, err := cmd.one("operator NAME")
		if err != nil {
			return err
		}
		tok, err := c.CreateOperator(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "operator %s created; its credential is shown only once (give it to the operator: verity node --operator-token-file FILE):\n", name)
		fmt.Fprintln(stdout, tok)
		return nil
	case "revoke":
		name, err := cmd.one("operator NAME")
		if err != nil {
			return err
		}
		if err := c.RevokeOperator(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "operator %s revoked; its nodes were disconnected\n", name)
		return nil
	case "list":
		ops, err := c.Operators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tLIVE NODES")
		for _, o := range ops {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", o.Name, o.Created.Format(time.RFC3339), o.Nodes)
		}
		return tw.Flush()
	}
	fmt.Fprintln(stderr, operatorsUsage)
	return fmt.Errorf("unknown operators command %q: %w", cmd.sub, errUsage)
}
