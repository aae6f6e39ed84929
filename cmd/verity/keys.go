package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

const keysUsage = `usage: verity keys create --account A   (prints the S3 access key id and its secret, shown only once)
       verity keys list --account A
       verity keys revoke ID
  common flags: [--gateway URL] [--admin-token T] [--site S --token T: a deploy token of site S, a site of account A, instead of the admin token]`

// runKeys manages the S3 access keys of an account through a gateway's
// API: create, list, revoke.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := newAPICommand("keys", keysUsage, args, stderr)
	if cmd == nil {
		return err
	}
	account := cmd.fl.String("account", "", "the account the key belongs to (create, list)")
	site := cmd.fl.String("site", "", "with --token: a site of the account whose deploy token authorizes the request")
	token := cmd.fl.String("token", os.Getenv("VERITY_TOKEN"), "the deploy token of --site (env VERITY_TOKEN); default: the admin token")
	if err := cmd.parse(args); err != nil {
		return err
	}
	tok := ""
	if *site != "" {
		tok = *token
	}
	c, ctx, cancel := cmd.client(ctx, tok)
	defer cancel()
	switch cmd.sub {
	case "create":
		if err := cmd.want(0, "no arguments, --account A"); err != nil || *account == "" {
			return fmt.Errorf("keys create: want --account A: %w", errUsage)
		}
		k, err := c.CreateS3Key(ctx, *account, *site)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "S3 access key for account %s created; its secret is shown only once:\n", k.Account)
		fmt.Fprintf(stdout, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", k.ID, k.Secret)
		return nil
	case "list":
		if *account == "" {
			return fmt.Errorf("keys list: want --account A: %w", errUsage)
		}
		keys, err := c.S3Keys(ctx, *account, *site)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tACCOUNT\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Account, k.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	case "revoke":
		id, err := cmd.one("access key ID")
		if err != nil {
			return err
		}
		if err := c.RevokeS3Key(ctx, id, *site); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "S3 access key %s revoked\n", id)
		return nil
	}
	fmt.Fprintln(stderr, keysUsage)
	return fmt.Errorf("unknown keys command %q: %w", cmd.sub, errUsage)
}
