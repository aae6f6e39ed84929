package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/web"
)

// netnsEnv marks the bench re-run inside its own network namespace.
const netnsEnv = "VERITY_BENCH_NETNS"

// inNetns reports whether this process is the re-run inside a namespace
// that has only lo, where WebRTC to a loopback node may be measured.
func inNetns() bool { return os.Getenv(netnsEnv) == "1" }

// reexecInNetns re-runs the whole bench inside a new network namespace
// with only lo (unshare -n), as the WebRTC browser tests do, so no ICE
// traffic can leave loopback; everything else the bench measures is on
// loopback too, so the table stays one run. It reports whether it ran
// (the caller exits with its code). When no namespace can be made it
// returns false and the bench runs here without the WebRTC rows.
func reexecInNetns() (bool, int) {
	if inNetns() {
		return false, 0
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: no network namespace (%v): WebRTC rows skipped\n", err)
		return false, 0
	}
	args := append([]string{"-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return true, ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return true, 1
	}
	return true, 0
}

// webrtcSpeed measures the 32 MiB asset into a page through the worker
// over WebRTC: a second devnet whose one node offers only WebRTC (as
// behind NAT) serves the same file, the page bridges the data channel to
// the worker, and the worker verifies every block. It runs only inside the
// namespace (see reexecInNetns).
func webrtcSpeed(ctx context.Context, cfg Config, tmp, wantSHA string, res *Results) error {
	if !inNetns() {
		return nil
	}
	siteDir := filepath.Join(tmp, "site-webrtc")
	if err := os.CopyFS(siteDir, web.Demo); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(siteDir, "bench"), 0o755); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(tmp, "site", filepath.FromSlash(pageFile)), filepath.Join(siteDir, filepath.FromSlash(pageFile))); err != nil {
		return err
	}
	d, err := devnet.New(ctx, devnet.Config{
		DataDir:    filepath.Join(tmp, "devnet-webrtc"),
		Listen:     "127.0.0.1:0",
		Nodes:      1,
		WebRTCOnly: true,
		DemoDir:    siteDir,
		Logger:     cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("webrtc devnet: %w", err)
	}
	defer d.Close()
	stop, err := runDevnet(ctx, d, 30*time.Second)
	if err != nil {
		return fmt.Errorf("webrtc devnet: %w", err)
	}
	defer stop()

	b, err := browser.Start(ctx, browser.Config{
		UserDataDir: filepath.Join(tmp, "profile-webrtc"),
		Flags:       browser.WebRTCLoopbackFlags,
		WaitTimeout: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	site := strings.TrimRight(d.SiteURL(devnet.SiteName), "/")
	if err := b.Navigate(ctx, site+"/"); err != nil {
		return err
	}
	if err := b.WaitController(ctx); err != nil {
		return err
	}
	// As in the page section: no DevTools event per chunk of the body.
	events, err := quietNetworkEvents(ctx, b)
	if err != nil {
		return err
	}
	var out []float64
	// The first runs warm up: a worker still booting its wasm passes a
	// no-store fetch to the network (the gateway answers, "first-visit"),
	// so warm-up runs repeat until the worker answers over WebRTC.
	for i, warm := 0, 0; i <= cfg.Runs; i++ {
		r, err := b.Fetch(ctx, "/"+pageFile, &browser.FetchOptions{Cache: "no-store"})
		if err != nil {
			return fmt.Errorf("worker over webrtc: %w", err)
		}
		if r.Status != http.StatusOK || r.SHA256 != wantSHA || r.Error != "" {
			return fmt.Errorf("worker over webrtc: status %d, %d bytes, sha256 %s (want %s), error %q", r.Status, r.Size, r.SHA256, wantSHA, r.Error)
		}
		tr, _ := r.Timing("verity")
		if i == 0 && tr == "first-visit" && warm < 5 {
			warm++
			i--
			continue
		}
		if tr != "webrtc" {
			return fmt.Errorf("worker over webrtc: served by %q (Server-Timing %q)", tr, r.Headers["server-timing"])
		}
		if i > 0 {
			out = append(out, float64(pageSize)/(r.Millis/1000)/1e6)
		}
	}
	res.add("page_worker_webrtc", median(out), "MB/s", "32 MiB, data channel bridged page → worker, verified ("+strconv.Itoa(len(out))+" runs)")

	// The same CAR read over a data channel in the page, no bridge, no
	// worker, no verification: what the transport itself gives.
	var sess session
	if err := getJSON(ctx, site+"/.verity/v1/session", &sess); err != nil {
		return err
	}
	if len(sess.Nodes) == 0 {
		return fmt.Errorf("webrtc devnet: the session lists no node")
	}
	target := "/ipfs/" + sess.Root + "/" + pageFile + "?format=car&dag-scope=entity"
	var raw []float64
	for i := 0; i <= cfg.Runs; i++ {
		r, err := browser.Call[rawResult](ctx, b, rawRTCJS, "/.verity/v1/webrtc/"+sess.Nodes[0].ID, target)
		if err != nil {
			return fmt.Errorf("raw webrtc: %w", err)
		}
		if r.Bytes < pageSize {
			return fmt.Errorf("raw webrtc: %d bytes, want the CAR of %d bytes", r.Bytes, pageSize)
		}
		if i > 0 {
			raw = append(raw, float64(pageSize)/(r.Ms/1000)/1e6)
		}
	}
	res.add("page_raw_webrtc", median(raw), "MB/s", "same CAR over a data channel read in the page, unverified")
	return events.none("webrtc rows", 0)
}

// rawRTCJS opens a peer connection to a node through the gateway's
// signaling endpoint, sends one request on a data channel and times it
// from the request to the channel's close (the connection is set up
// before).
const rawRTCJS = `async (signal, target) => {
	const pc = new RTCPeerConnection({iceServers: []});
	pc.createDataChannel('init');
	await pc.setLocalDescription(await pc.createOffer());
	await new Promise((res) => {
		if (pc.iceGatheringState === 'complete') return res();
		const t = setTimeout(res, 2000);
		pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); res(); } });
	});
	const r = await fetch(signal, {method: 'POST', body: pc.localDescription.sdp, headers: {'Content-Type': 'application/sdp'}});
	if (!r.ok) throw new Error('signaling: ' + r.status);
	await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
	await new Promise((res, rej) => {
		const t = setTimeout(() => rej(new Error('connect timeout')), 10000);
		const check = () => { if (pc.connectionState === 'connected') { clearTimeout(t); res(); } };
		pc.addEventListener('connectionstatechange', check);
		check();
	});
	const dc = pc.createDataChannel('verity', {ordered: true});
	dc.binaryType = 'arraybuffer';
	await new Promise((res) => { dc.onopen = res; });
	let n = 0;
	const t0 = performance.now();
	const done = new Promise((res) => {
		dc.onmessage = (ev) => { if (typeof ev.data !== 'string') n += ev.data.byteLength; };
		dc.onclose = res;
	});
	dc.send(new TextEncoder().encode('VERITY/1 GET ' + target + '\r\n\r\n'));
	await done;
	const ms = performance.now() - t0;
	pc.close();
	return {bytes: n, ms};
}`
