package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// startCommand runs a subcommand until the test ends and returns the value
// of the first stdout line starting with prefix.
func startCommand(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) error, args []string, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var v string
	pr, pw := io.Pipe()
	var result error
	finished := make(chan struct{}) // closed once run returned; result is set
	go func() {
		result = run(ctx, args, pw, io.Discard)
		pw.Close()
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		if result != nil && v == "" {
			return // already reported below
		}
		if result != nil {
			t.Errorf("%v: %v", args, result)
		}
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			v = s
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if v == "" {
		cancel()
		<-finished
		t.Fatalf("%v: no %q line printed: %v", args, prefix, result)
	}
	return v
}

func TestRunGatewayEmbeddedBus(t *testing.T) {
	url := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--name", "gw-test"}, "gateway: ")
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	for path, want := range map[string]int{"/healthz": 200, "/v1/nodes/connect": http.StatusUpgradeRequired} {
		resp, err := c.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// --site publishes into the sites bucket, which outlives the process.
func TestRunGatewayPublishesSites(t *testing.T) {
	const root = "bafkr4ib247mal5tytjsaflfxblkas2ufuvv7nacov4s4asj2y2lvjdjqwu"
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer cancel()
	for _, bad := range [][]string{{"--site", "Bad_Name=" + root}, {"--site", "blog=nope"}, {"--site", "blog"}} {
		if err := runGateway(ctx, append([]string{"--data", dir, "--listen", "127.0.0.1:0"}, bad...), io.Discard, io.Discard); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
	site := startCommand(t, runGateway, []string{"--data", dir, "--listen", "127.0.0.1:0", "--site", "blog=" + root}, "blog: ")
	if !strings.HasPrefix(site, "http://blog.localhost:") {
		t.Fatalf("site URL %q", site)
	}
}

func TestRunGatewayBadNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer cancel()
	if err := runGateway(ctx, []string{"--nats", "nats://127.0.0.1:1", "--listen", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unreachable NATS accepted")
	}
}

// verity node --coordinator joins verity gateway; the gateway's session
// lists it.
func TestRunNodeJoinsGateway(t *testing.T) {
	const root = "bafkr4ib247mal5tytjsaflfxblkas2ufuvv7nacov4s4asj2y2lvjdjqwu"
	const admin = "vat_node-join"
	gw := strings.TrimSuffix(startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", admin, "--allow-private-addrs", "--site", "blog=" + root}, "blog: "), "/")
	gwURL := "http://127.0.0.1:" + gw[strings.LastIndex(gw, ":")+1:]
	// The credential in a file, as an operator keeps it.
	tokFile := filepath.Join(t.TempDir(), "operator-token")
	if err := os.WriteFile(tokFile, []byte(createOperator(t, gwURL, admin)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := startCommand(t, runNode, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0", "--log-level", "warn", "--coordinator", gwURL, "--operator-token-file", tokFile}, "id: ")
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	testutil.EventuallyErr(t, 10*time.Second, "the session to list node "+id, func() error {
		req, _ := http.NewRequest(http.MethodGet, gwURL+"/.verity/v1/session", nil)
		req.Host = strings.TrimPrefix(gw, "http://")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), id) {
			return nil
		}
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	})
}

// The embedded server keeps one copy: more replicas need an external
// cluster.
func TestRunGatewayNATSReplicasChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer cancel()
	for _, args := range [][]string{
		{"--nats-replicas", "3"},
		{"--nats-replicas", "0"},
		{"--nats-replicas", "0", "--nats", "nats://127.0.0.1:1"},
	} {
		args = append(args, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		if err := runGateway(ctx, args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestASNTableFlagChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer cancel()
	missing := t.TempDir() + "/missing.tsv"
	if err := runGateway(ctx, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--asn-table", missing}, io.Discard, io.Discard); err == nil {
		t.Fatal("gateway: missing ASN table accepted")
	}
	if err := runDevnet(ctx, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--asn-table", missing}, io.Discard, io.Discard); err == nil {
		t.Fatal("devnet: missing ASN table accepted")
	}
}

// verity devnet prints its one line only once the nodes have joined, so the
// first visit it announces is served.
func TestRunDevnetReadyWhenPrinted(t *testing.T) {
	site := startCommand(t, runDevnet, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, "demo: ")
	if !strings.HasPrefix(site, "http://demo.localhost:") {
		t.Fatalf("site URL %q", site)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(site, "http://"), "/")
	_, port, _ := strings.Cut(host, ":")
	c := &http.Client{Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script src="/verity.js" async></script>`) {
		t.Fatalf("first visit right after the announcement: %d %.200q", resp.StatusCode, body)
	}
}

// createOperator creates a node operator on the gateway at gw with the
// admin token, through the operators command, and returns its credential.
func createOperator(t *testing.T, gw, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(30*time.Second))
	defer cancel()
	var out, errb bytes.Buffer
	name := "op-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := runOperators(ctx, []string{"create", name, "--gateway", gw, "--admin-token", admin}, &out, &errb); err != nil {
		t.Fatalf("operators create: %v: %s", err, errb.String())
	}
	return strings.TrimSpace(out.String())
}
