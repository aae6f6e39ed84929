package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// The emulated topology: round-trip times added by netem forwarders (half
// each way) in front of the gateway and of a node.
const (
	gatewayRTT = 80 * time.Millisecond
	nodeRTT    = 10 * time.Millisecond
)

// ttfbDistance measures the time to the first verified byte of the 1 MiB
// asset on a new connection: from the gateway's first-visit serving 80 ms
// away, and from a node's trustless HTTP endpoint 10 ms away, verified by
// the client as the worker would. The forwarders terminate TCP, so the
// handshake itself is not delayed: each figure is one delayed round trip
// plus the serving and verification time.
func ttfbDistance(ctx context.Context, cfg Config, d *devnet.Devnet, res *Results) error {
	gwURL, err := url.Parse(d.Gateway().URL())
	if err != nil {
		return err
	}
	gwProxy, err := netem.NewTCP(netem.Config{Target: gwURL.Host,
		Up: netem.Link{Delay: gatewayRTT / 2}, Down: netem.Link{Delay: gatewayRTT / 2}})
	if err != nil {
		return err
	}
	defer gwProxy.Close()
	nodeURL, err := url.Parse(d.Nodes()[0].HTTPURL())
	if err != nil {
		return err
	}
	nodeProxy, err := netem.NewTCP(netem.Config{Target: nodeURL.Host,
		Up: netem.Link{Delay: nodeRTT / 2}, Down: netem.Link{Delay: nodeRTT / 2}})
	if err != nil {
		return err
	}
	defer nodeProxy.Close()

	siteHost := strings.TrimSuffix(strings.TrimPrefix(d.SiteURL(devnet.SiteName), "http://"), "/")
	root, err := cid.Parse(d.Root())
	if err != nil {
		return err
	}
	vreq := verify.Request{Root: root, Path: strings.Split(ttfbFile, "/")}

	var gw, nd []float64
	for i := 0; i <= cfg.Runs; i++ { // the first run warms up
		ms, err := firstByte(ctx, "http://"+gwProxy.Addr()+"/"+ttfbFile, siteHost, nil)
		if err != nil {
			return fmt.Errorf("gateway first byte: %w", err)
		}
		if i > 0 {
			gw = append(gw, ms)
		}
		ms, err = firstByte(ctx, "http://"+nodeProxy.Addr()+vreq.Target(), "", &vreq)
		if err != nil {
			return fmt.Errorf("node first byte: %w", err)
		}
		if i > 0 {
			nd = append(nd, ms)
		}
	}
	res.add("ttfb_1m_gateway_80ms", median(gw), "ms", fmt.Sprintf("1 MiB, first verified byte, gateway %v RTT (handshake not delayed)", gatewayRTT))
	res.add("ttfb_1m_node_10ms", median(nd), "ms", fmt.Sprintf("1 MiB, first verified byte, node %v RTT (handshake not delayed)", nodeRTT))
	return nil
}

// firstByte GETs u on a new connection and returns the milliseconds until
// the first body byte, or, with vreq, the first verified byte of the CAR.
// The body is read to its end (and verified) before it returns.
func firstByte(ctx context.Context, u, host string, vreq *verify.Request) (float64, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{}).DialContext}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body io.Reader = resp.Body
	if vreq != nil {
		body = verify.NewReader(resp.Body, *vreq, verify.Options{})
	}
	buf := make([]byte, 32<<10)
	var first time.Duration
	var total int64
	for {
		n, err := body.Read(buf)
		if n > 0 && total == 0 {
			first = time.Since(start)
		}
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if total != ttfbSize {
		return 0, fmt.Errorf("GET %s: %d bytes, want %d", u, total, ttfbSize)
	}
	return float64(first.Microseconds()) / 1000, nil
}
