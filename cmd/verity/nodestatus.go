package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verity-cdn/verity/node"
)

// runNodeStatus prints a running node's status (GET /status on its HTTP
// address; served to loopback unless the node runs with --status-public).
func runNodeStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("node status", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("http", "http://127.0.0.1:4001", "the node's HTTP address (its --http)")
	asJSON := fl.Bool("json", false, "print the node's JSON answer")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("node status: unexpected arguments %q: %w", fl.Args(), errUsage)
	}
	body, err := fetchNodeStatus(ctx, *addr)
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st node.StatusReport
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("node status: %s answered %w", *addr, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	p := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	p("id", st.ID)
	p("state", st.State())
	p("version", st.Version)
	p("up", st.Uptime)
	if st.Region != "" {
		p("region", st.Region)
	}
	p("http", st.HTTP)
	if st.WebTransport != "" {
		p("webtransport", st.WebTransport)
	}
	if st.WebRTC != "" {
		p("webrtc", st.WebRTC)
	}
	blocks := fmt.Sprint(st.Store.Blocks)
	if !st.Store.Counted {
		blocks += " (counting)"
	}
	p("blocks", blocks)
	p("stored", fmt.Sprintf("%d bytes", st.Store.Bytes))
	p("offered", fmt.Sprintf("%d bytes, %d free", st.Store.Capacity, st.Store.Free))
	p("holdings", fmt.Sprintf("%d roots placed, %d imported locally", len(st.Holdings), len(st.LocalPins)))
	for _, c := range st.Certificates {
		p("certificate", fmt.Sprintf("%s… until %s (in %s)", c.SHA256[:16], c.NotAfter.UTC().Format(time.RFC3339), c.ExpiresIn))
	}
	p("receipts", fmt.Sprintf("%d sessions, %d bytes pending settlement, %d settled", st.Receipts.Sessions, st.Receipts.PendingBytes, st.Receipts.SettledBytes))
	for _, e := range st.Errors {
		p("error", fmt.Sprintf("%s %s %s %s", e.Time.UTC().Format(time.RFC3339), e.Level, e.Message, e.Attrs))
	}
	return tw.Flush()
}

// fetchNodeStatus reads GET /status of the node at addr (its HTTP
// address, with or without a scheme).
func fetchNodeStatus(ctx context.Context, addr string) ([]byte, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+node.StatusPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is the node running at %s? %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
