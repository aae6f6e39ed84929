package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/internal/siteclient"
)

// sitesWebhooks runs `verity sites webhooks add|list|remove|log|redeliver`.
func sitesWebhooks(ctx context.Context, c *siteclient.Client, pos []string, types string, asJSON bool, stdout, stderr io.Writer) error {
	want := map[string]int{"add": 3, "list": 2, "remove": 3, "log": 3, "redeliver": 4}
	if len(pos) == 0 || want[pos[0]] == 0 || len(pos) != want[pos[0]] {
		fmt.Fprintln(stderr, sitesUsage)
		return fmt.Errorf("sites webhooks: want add NAME URL, list NAME, remove|log NAME ID or redeliver NAME ID EVENT_ID: %w", errUsage)
	}
	site := pos[1]
	printJSON := func(v any) error {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch pos[0] {
	case "add":
		var list []string
		for _, t := range strings.Split(types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				list = append(list, t)
			}
		}
		hook, err := c.AddWebhook(ctx, site, pos[2], list)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(hook)
		}
		fmt.Fprintf(stderr, "webhook %s added to site %s for %s\nits signing secret is shown only once:\n", hook.ID, site, strings.Join(hook.Events, ", "))
		fmt.Fprintln(stdout, hook.ID)
		fmt.Fprintln(stdout, hook.Secret)
		return nil
	case "list":
		hooks, err := c.Webhooks(ctx, site)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(hooks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tURL\tEVENTS\tCREATED")
		for _, h := range hooks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.ID, h.URL, strings.Join(h.Events, ","), h.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	case "remove":
		if err := c.RemoveWebhook(ctx, site, pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "webhook %s removed from site %s\n", pos[2], site)
		return nil
	case "log":
		log, err := c.WebhookLog(ctx, site, pos[2])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(log)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tEVENT\tTYPE\tATTEMPT\tRESULT\tDURATION\tNEXT RETRY")
		for _, a := range log.Attempts {
			result := fmt.Sprint(a.Status)
			if a.Error != "" {
				result = a.Error
			}
			next := "-"
			if a.NextRetry != nil {
				next = a.NextRetry.Format(time.RFC3339)
			}
			attempt := fmt.Sprint(a.Attempt)
			if a.Redelivery {
				attempt += " (redelivery)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%dms\t%s\n", a.Time.Format(time.RFC3339), a.Event, a.Type, attempt, result, a.DurationMS, next)
		}
		return tw.Flush()
	case "redeliver":
		if err := c.RedeliverWebhook(ctx, site, pos[2], pos[3]); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "event %s queued for webhook %s again\n", pos[3], pos[2])
		return nil
	}
	return nil
}
