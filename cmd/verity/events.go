package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/siteclient"
)

// runEvents prints the gateway's event feed: `verity events [--follow]`.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("events", flag.ContinueOnError)
	fl.SetOutput(stderr)
	gw := gatewayFlag(fl)
	admin := adminTokenFlag(fl)
	follow := fl.Bool("follow", false, "keep printing new events as they happen, until interrupted")
	last := fl.Uint64("last", 20, "print up to this many stored events first")
	asJSON := fl.Bool("json", false, "print each event's JSON envelope on one line")
	var types []string
	fl.Func("type", "only events of this type, e.g. site.published (repeatable)", func(v string) error {
		if !events.Type(v).Valid() {
			return fmt.Errorf("invalid event type %q", v)
		}
		types = append(types, v)
		return nil
	})
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("events: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	c := siteclient.New(siteclient.Config{Gateway: *gw, Token: *admin})
	return c.Events(ctx, types, *last, *follow, func(ev api.Event) error {
		if *asJSON {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintf(stdout, "%s  %-18s %-14s %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Type, ev.Source, ev.Data)
		return err
	})
}
