package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/internal/siteclient"
)

const sitesUsage = "usage: verity sites create NAME [--account A] [--from-bucket B] | follow NAME BUCKET | list | history NAME | rollback NAME [--to ROOT_CID] | promote NAME ROOT_CID | domain add|verify|remove NAME DOMAIN | domain list NAME | webhooks add NAME URL [--events T,T] | webhooks list NAME | webhooks remove|log NAME ID | webhooks redeliver NAME ID EVENT_ID  [--json] [--gateway URL] [--admin-token T | --token T]"

// runSites manages sites through a gateway's site API:
// create (admin), list (admin), history and rollback (admin or the site's
// deploy token).
func runSites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := newAPICommand("sites", sitesUsage, args, stderr)
	if cmd == nil {
		return err
	}
	token := cmd.fl.String("token", os.Getenv("VERITY_TOKEN"), "the site's deploy token, for history and rollback (env VERITY_TOKEN)")
	account := cmd.fl.String("account", "", "create: the account the site is charged to (must exist); its deploy token may deploy only for it")
	to := cmd.fl.String("to", "", "rollback: the root CID to go back to (default: the previous root)")
	types := cmd.fl.String("events", "", "webhooks add: comma-separated event types (default: every site event)")
	asJSON := cmd.fl.Bool("json", false, "webhooks: print the API's JSON")
	fromBucket := cmd.fl.String("from-bucket", "", "create: the S3 bucket (of the site's account) the site follows: published at the bucket's root, and again at each change")
	if err := cmd.parse(args); err != nil {
		return err
	}
	tok := *cmd.admin
	if tok == "" {
		tok = *token
	}
	c, ctx, cancel := cmd.client(ctx, tok)
	defer cancel()
	switch cmd.sub {
	case "create":
		name, err := cmd.one("site NAME")
		if err != nil {
			return err
		}
		t, err := c.CreateSiteFor(ctx, name, *account)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "site %s created; its deploy token is shown only once:\n", name)
		fmt.Fprintln(stdout, t)
		if *fromBucket != "" {
			d, err := c.FollowBucket(ctx, name, *fromBucket)
			if err != nil {
				return fmt.Errorf("site %s created, but it does not follow bucket %s: %w", name, *fromBucket, err)
			}
			fmt.Fprintf(stderr, "site %s follows bucket %s: root %s, %s\n", name, d.Bucket, d.Root, d.State)
		}
		return nil
	case "follow":
		if len(cmd.pos) != 2 {
			fmt.Fprintln(stderr, sitesUsage)
			return fmt.Errorf("sites follow: want NAME and BUCKET: %w", errUsage)
		}
		d, err := c.FollowBucket(ctx, cmd.pos[0], cmd.pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s follows bucket %s: root %s, %s\n", cmd.pos[0], d.Bucket, d.Root, d.State)
		return nil
	case "list":
		sites, err := c.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tACCOUNT\tVERSION\tROOT\tLATEST DEPLOY")
		for _, s := range sites {
			acct, ver, root, dep := "-", "-", "-", "-"
			if s.Site != nil {
				ver, root = fmt.Sprint(s.Site.Version), s.Site.Root
				if s.Site.Account != "" {
					acct = s.Site.Account
				}
			}
			if s.Deploy != nil {
				dep = s.Deploy.State + " " + s.Deploy.Root
				if acct == "-" && s.Deploy.Account != "" {
					acct = s.Deploy.Account
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, acct, ver, root, dep)
		}
		return tw.Flush()
	case "history":
		name, err := cmd.one("site NAME")
		if err != nil {
			return err
		}
		st, err := c.Site(ctx, name)
		if err != nil {
			return err
		}
		if st.Site == nil {
			fmt.Fprintf(stderr, "site %s is not published yet\n", name)
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tACTION\tTIME\tROOT")
		for _, v := range st.Site.History {
			cur := ""
			if v.Version == st.Site.Version {
				cur = "  (current)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s%s\n", v.Version, v.Action, v.Time.Format(time.RFC3339), v.Root, cur)
		}
		return tw.Flush()
	case "rollback":
		name, err := cmd.one("site NAME")
		if err != nil {
			return err
		}
		rec, err := c.Rollback(ctx, name, *to)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: version %d, root %s\n", name, rec.Version, rec.Root)
		return nil
	case "promote":
		if len(cmd.pos) != 2 {
			fmt.Fprintln(stderr, sitesUsage)
			return fmt.Errorf("sites promote: want NAME and ROOT_CID: %w", errUsage)
		}
		rec, err := c.Promote(ctx, cmd.pos[0], cmd.pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: version %d, root %s\n", cmd.pos[0], rec.Version, rec.Root)
		return nil
	case "domain":
		return sitesDomain(ctx, c, cmd.pos, stdout, stderr)
	case "webhooks":
		return sitesWebhooks(ctx, c, cmd.pos, *types, *asJSON, stdout, stderr)
	}
	fmt.Fprintln(stderr, sitesUsage)
	return fmt.Errorf("unknown sites command %q: %w", cmd.sub, errUsage)
}

// sitesDomain runs `verity sites domain add|verify|remove NAME DOMAIN` and
// `verity sites domain list NAME`.
func sitesDomain(ctx context.Context, c *siteclient.Client, pos []string, stdout, stderr io.Writer) error {
	want := 3
	if len(pos) > 0 && pos[0] == "list" {
		want = 2
	}
	if len(pos) != want {
		fmt.Fprintln(stderr, sitesUsage)
		return fmt.Errorf("sites domain: want add|verify|remove NAME DOMAIN or list NAME: %w", errUsage)
	}
	action, site := pos[0], pos[1]
	switch action {
	case "add":
		rec, err := c.AttachDomain(ctx, site, pos[2])
		if err != nil {
			return err
		}
		if rec.Verified {
			fmt.Fprintf(stdout, "%s serves site %s (verified by %s)\n", rec.Domain, site, rec.Method)
			return nil
		}
		fmt.Fprintf(stdout, "%s is attached to site %s, pending proof that you control it. Add either\n", rec.Domain, site)
		fmt.Fprintf(stdout, "  a TXT record  %s  with the value  %s\n", rec.TXTName, rec.TXTValue)
		fmt.Fprintf(stdout, "  or a CNAME    %s  →  %s\n", rec.Domain, rec.CNAMETarget)
		fmt.Fprintf(stdout, "then run: verity sites domain verify %s %s\n", site, rec.Domain)
		return nil
	case "verify":
		rec, err := c.VerifyDomain(ctx, site, pos[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s serves site %s (verified by %s)\n", rec.Domain, site, rec.Method)
		return nil
	case "remove":
		if err := c.RemoveDomain(ctx, site, pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s removed from site %s\n", pos[2], site)
		return nil
	case "list":
		recs, err := c.Domains(ctx, site)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tSTATE\tPROOF")
		for _, r := range recs {
			state, proof := "pending", "TXT "+r.TXTName+" = "+r.TXTValue+"  or  CNAME → "+r.CNAMETarget
			if r.Verified {
				state, proof = "verified", r.Method+" "+r.VerifiedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Domain, state, proof)
		}
		return tw.Flush()
	}
	fmt.Fprintln(stderr, sitesUsage)
	return fmt.Errorf("unknown sites domain command %q: %w", action, errUsage)
}

// parseInterspersed parses flags that may come after positional
// arguments, and returns the positional ones.
func parseInterspersed(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		args = fl.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// gatewayFlag defines --gateway, the gateway's own base URL.
func gatewayFlag(fl *flag.FlagSet) *string {
	return fl.String("gateway", envOr("VERITY_GATEWAY", "http://127.0.0.1:8080"), "gateway base URL (env VERITY_GATEWAY)")
}

// adminTokenFlag defines --admin-token for the API clients.
func adminTokenFlag(fl *flag.FlagSet) *string {
	return fl.String("admin-token", os.Getenv("VERITY_ADMIN_TOKEN"), "admin token (env VERITY_ADMIN_TOKEN)")
}

// defaultDataDir is <user cache dir>/verity/<part>, the data directory a
// part uses without --data.
func defaultDataDir(part string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%s: no --data and no user cache dir: %w", part, err)
	}
	return filepath.Join(dir, "verity", part), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
