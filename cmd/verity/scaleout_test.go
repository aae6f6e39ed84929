package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// TestScaleOut runs Verity as it runs at scale, on loopback: a three-server
// NATS cluster with JetStream, two `verity gateway` processes sharing it
// with replicas 3, and two `verity node` processes joined to gateway A
// (one of them requiring payment).
// A site created and deployed through A is served by B; after one NATS
// server (the JetStream meta leader) is shut down, a deploy through B is
// still placed, published and served by both gateways.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and four processes")
	}
	start := time.Now()
	logs := newProcLogs(t)

	cluster := startNATSCluster(t, 3)
	natsURLs := strings.Join(cluster.clientURLs(), ",")

	gw := func(name string) *gatewayProc {
		token := "admin-" + name
		url := logs.start(t, name, "gateway: ",
			"gateway", "--listen", "127.0.0.1:0", "--name", name, "--data", t.TempDir(),
			"--admin-token", token, "--nats", natsURLs, "--nats-replicas", "3", "--allow-private-addrs")
		return &gatewayProc{name: name, url: url, admin: token}
	}
	gwA, gwB := gw("gw-a"), gw("gw-b")
	var nodeIDs []string
	opToken := createOperator(t, gwA.url, gwA.admin)
	for _, name := range []string{"node-1", "node-2"} {
		args := []string{"node", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0",
			"--coordinator", gwA.url, "--operator-token", opToken, "--log-level", "warn"}
		if name == "node-2" {
			// Its HTTP port serves the platform's signed requests only:
			// both gateways' answers and gateway A's audits are signed
			// with their payment keys.
			args = append(args, "--require-payment")
		}
		nodeIDs = append(nodeIDs, logs.start(t, name, "id: ", args...))
	}
	t.Logf("cluster, 2 gateways and 2 nodes up in %s", time.Since(start).Round(time.Millisecond))

	// Deploy 1: site created and deployed through gateway A.
	const site = "blog"
	v1 := writeSite(t, "version one")
	token := runCLI(t, runSites, "sites", "create", site, "--gateway", gwA.url, "--admin-token", gwA.admin)
	root1 := deploy(t, v1, site, gwA.url, token)

	for _, g := range []*gatewayProc{gwB, gwA} {
		g.waitServes(t, site, readFile(t, filepath.Join(v1, "index.html")), 15*time.Second)
	}
	gwB.waitSession(t, site, root1, nodeIDs, 15*time.Second)
	t.Logf("deploy 1 (%s) through %s served by %s at %s", root1, gwA.name, gwB.name, time.Since(start).Round(time.Millisecond))

	// One NATS server goes away: the JetStream meta leader, so JetStream
	// also has to elect another.
	killed := cluster.shutdownLeader(t, 10*time.Second)
	t.Logf("shut NATS server %s down (meta leader); cluster has a new leader at %s", killed, time.Since(start).Round(time.Millisecond))

	// Deploy 2 through gateway B: the nodes (joined to A) fetch the CAR
	// from B, and both gateways serve the new version.
	v2 := writeSite(t, "version two")
	root2 := deploy(t, v2, site, gwB.url, token)
	if root2 == root1 {
		t.Fatalf("both versions have root %s", root1)
	}
	// A gateway whose sites watch (an ordered, R1 consumer) lived on the
	// server shut down sees the change only once nats.go notices the
	// missing idle heartbeats (5 s, checked every 10 s) and recreates the
	// consumer elsewhere: up to ~20 s. Hence the longer wait here.
	for _, g := range []*gatewayProc{gwA, gwB} {
		g.waitServes(t, site, readFile(t, filepath.Join(v2, "index.html")), 35*time.Second)
		g.waitSession(t, site, root2, nodeIDs, 10*time.Second)
	}

	// The sites bucket (read on the surviving servers) keeps both versions.
	roots := siteBucketHistory(t, cluster.clientURLs(), site)
	if !slices.Contains(roots, root1) || !slices.Contains(roots, root2) {
		t.Fatalf("sites bucket history of %s has roots %v, want %s and %s", site, roots, root1, root2)
	}
	t.Logf("deploy 2 (%s) through %s served by both gateways at %s", root2, gwB.name, time.Since(start).Round(time.Millisecond))
}

// natsCluster is a JetStream cluster of in-process NATS servers on
// loopback.
type natsCluster struct {
	servers []*server.Server
}

// startNATSCluster starts n clustered servers with JetStream, each with its
// own store, and waits until JetStream has a meta leader that every server
// follows. They are shut down when the test ends.
func startNATSCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	// Routes must be known up front: reserve the cluster ports.
	ports := make([]int, n)
	base := testutil.FreePorts(t, n)
	for i := range ports {
		ports[i] = base + i
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	c := &natsCluster{}
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "verity-scaleout",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		s.Start()
		c.servers = append(c.servers, s)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats server %s not ready for connections after 10s", opts.ServerName)
		}
	}
	c.waitLeader(t, 20*time.Second)
	return c
}

// clientURLs lists the client URLs of the running servers.
func (c *natsCluster) clientURLs() []string {
	var urls []string
	for _, s := range c.servers {
		if s.Running() {
			urls = append(urls, s.ClientURL())
		}
	}
	return urls
}

// waitLeader waits until a running server is the JetStream meta leader and
// every running server is current with it.
func (c *natsCluster) waitLeader(t *testing.T, d time.Duration) *server.Server {
	t.Helper()
	var leader *server.Server
	testutil.Eventually(t, d, "a JetStream meta leader of the NATS cluster followed by every server", func() bool {
		leader = nil
		current := true
		for _, s := range c.servers {
			if !s.Running() {
				continue
			}
			if s.JetStreamIsLeader() {
				leader = s
			}
			current = current && s.JetStreamIsCurrent()
		}
		return leader != nil && current
	})
	return leader
}

// shutdownLeader shuts the meta leader down, waits for another, and returns
// the name of the server it shut down.
func (c *natsCluster) shutdownLeader(t *testing.T, d time.Duration) string {
	t.Helper()
	leader := c.waitLeader(t, d)
	leader.Shutdown()
	leader.WaitForShutdown()
	c.waitLeader(t, d)
	return leader.Name()
}

// siteBucketHistory reads every revision of key site in the sites bucket
// and returns their roots, oldest first.
func siteBucketHistory(t *testing.T, urls []string, site string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("scaleout-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, events.BucketSites)
	if err != nil {
		t.Fatalf("sites bucket: %v", err)
	}
	if st, err := kv.Status(ctx); err != nil {
		t.Fatalf("sites bucket status: %v", err)
	} else if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
		t.Fatalf("sites bucket has %d replicas, want 3", r)
	}
	entries, err := kv.History(ctx, site)
	if err != nil {
		t.Fatalf("sites bucket history of %s: %v", site, err)
	}
	var roots []string
	for _, e := range entries {
		var rec api.SiteRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatalf("sites bucket %s revision %d: %v", site, e.Revision(), err)
		}
		roots = append(roots, rec.Root)
	}
	return roots
}

// gatewayProc is a running `verity gateway`.
type gatewayProc struct {
	name  string
	url   string // http://127.0.0.1:PORT
	admin string
}

// siteHost is the Host header of site on this gateway.
func (g *gatewayProc) siteHost(site string) string {
	_, port, _ := strings.Cut(strings.TrimPrefix(g.url, "http://"), ":")
	return site + ".localhost:" + port
}

// get fetches path of site from this gateway.
func (g *gatewayProc) get(site, path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = g.siteHost(site)
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// waitServes polls the site's first-visit page until it is want, byte for
// byte.
func (g *gatewayProc) waitServes(t *testing.T, site string, want []byte, d time.Duration) {
	t.Helper()
	testutil.EventuallyErr(t, d, fmt.Sprintf("%s serving the deployed index.html of %s", g.name, site), func() error {
		code, body, err := g.get(site, "/")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !bytes.Equal(body, want) {
			return fmt.Errorf("%d %.120q", code, body)
		}
		return nil
	})
}

// waitSession polls the site's session until it has root and lists every
// node of ids.
func (g *gatewayProc) waitSession(t *testing.T, site, root string, ids []string, d time.Duration) {
	t.Helper()
	testutil.EventuallyErr(t, d, fmt.Sprintf("%s session of %s at %s listing nodes %v", g.name, site, root, ids), func() error {
		code, body, err := g.get(site, "/.verity/v1/session")
		if err != nil {
			return err
		}
		var s api.Session
		if code != http.StatusOK || json.Unmarshal(body, &s) != nil {
			return fmt.Errorf("%d %.200q", code, body)
		}
		var got []string
		for _, n := range s.Nodes {
			got = append(got, n.ID)
		}
		for _, id := range ids {
			if !slices.Contains(got, id) {
				return fmt.Errorf("root %s, nodes %v", s.Root, got)
			}
		}
		if s.Root != root {
			return fmt.Errorf("root %s, nodes %v", s.Root, got)
		}
		return nil
	})
}

// deploy runs `verity deploy dir --site site` against gw and returns the
// published root.
func deploy(t *testing.T, dir, site, gw, token string) string {
	t.Helper()
	out := runCLI(t, runDeploy, "deploy", dir, "--site", site, "--gateway", gw, "--token", token, "--wait", "30s")
	root, _, _ := strings.Cut(out, "\n")
	return root
}

// runCLI runs a short subcommand in-process and returns its trimmed stdout.
func runCLI(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) error, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args[1:], &stdout, &stderr); err != nil {
		t.Fatalf("verity %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// writeSite writes a two-file site whose index.html says text.
func writeSite(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html": "<!doctype html>\n<title>scale-out</title>\n<link rel=stylesheet href=style.css>\n<p>" + text + "</p>\n",
		"style.css":  "p { color: teal } /* " + text + " */\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// procLogs starts verity processes (this test binary, run as verity; see
// TestMain) with their stderr in files, stops them by PID when the test
// ends, and shows the end of each log if the test failed.
type procLogs struct {
	dir   string
	mu    sync.Mutex
	names []string
}

func newProcLogs(t *testing.T) *procLogs {
	l := &procLogs{dir: t.TempDir()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, name := range l.names {
			b, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("--- %s log (last %d lines) ---\n%s", name, min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return l
}

// start execs `verity args...` and returns the rest of the first stdout
// line starting with prefix.
func (l *procLogs) start(t *testing.T, name, prefix string, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stderr = logf
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var waitErr error
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok && !found {
				found = true
				lines <- v
			}
		}
		waitErr = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		// SIGTERM lets it close its bus and WebSockets; SIGKILL if it hangs.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			var ee *exec.ExitError
			if waitErr != nil && !errors.As(waitErr, &ee) {
				t.Errorf("%s (pid %d): %v", name, cmd.Process.Pid, waitErr)
			}
		case <-time.After(testutil.Scale(10 * time.Second)):
			t.Errorf("%s (pid %d) still running %s after SIGTERM; killed", name, cmd.Process.Pid, testutil.Scale(10*time.Second))
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case v := <-lines:
		return v
	case <-exited:
		t.Fatalf("%s exited before printing %q: %v", name, prefix, waitErr)
	case <-time.After(testutil.Scale(20 * time.Second)):
		t.Fatalf("%s printed no %q line within %s", name, prefix, testutil.Scale(20*time.Second))
	}
	return ""
}
