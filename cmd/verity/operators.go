package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/internal/siteclient"
)

// runOperators manages node operators' credentials through a gateway's
// API (admin token): create, revoke, list.
func runOperators(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, `usage: verity operators create NAME   (prints the operator's credential, shown only once)
       verity operators revoke NAME   (its nodes are disconnected and can no longer join)
       verity operators list
  common flags: [--gateway URL] [--admin-token T]`)
	}
	if len(args) == 0 || isHelp(args[0]) {
		usage()
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fl := flag.NewFlagSet("operators "+sub, flag.ContinueOnError)
	fl.SetOutput(stderr)
	gw := gatewayFlag(fl)
	admin := adminTokenFlag(fl)
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	c := siteclient.New(siteclient.Config{Gateway: *gw, Token: *admin})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	needName := func() (string, error) {
		if len(pos) != 1 {
			usage()
			return "", fmt.Errorf("operators %s: want one operator NAME: %w", sub, errUsage)
		}
		return pos[0], nil
	}
	switch sub {
	case "create":
		name, err := needName()
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
		name, err := needName()
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
	usage()
	return fmt.Errorf("unknown operators command %q: %w", sub, errUsage)
}
