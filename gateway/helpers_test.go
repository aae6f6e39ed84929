package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
)

// testAssets stands in for the embedded worker files.
func testAssets() fstest.MapFS {
	return fstest.MapFS{
		"verity.js": {Data: []byte("navigator.serviceWorker.register('/verity-sw.js',{scope:'/'});\n")},
		"verity-sw.js": {Data: []byte("importScripts('__VERITY_WASM_EXEC_URL__');\nconst WASM = '__VERITY_WASM_URL__';\n" +
			"const BLAKE3_SIMD = '__VERITY_BLAKE3_SIMD__';\n")},
		"dist/verity.wasm":  {Data: append([]byte("\x00asm\x01\x00\x00\x00"), []byte(strings.Repeat("wasm body ", 2000))...)},
		"dist/wasm_exec.js": {Data: []byte("// wasm_exec\n")},
		"dist/blake3.wasm":  {Data: []byte("\x00asm\x01\x00\x00\x00 simd")},
	}
}

// testGateway is a running Gateway on 127.0.0.1:0.
type testGateway struct {
	*Gateway
	reg    *prometheus.Registry
	client *http.Client
	coord  *coordinator.Coordinator // with startCoordGateway
	// opToken is the credential of the coordinator's test operator.
	opToken string
}

// Coordinator is the coordinator startCoordGateway wired in, or nil.
func (tg *testGateway) Coordinator() *coordinator.Coordinator { return tg.coord }

// startGateway runs a gateway with cfg, allowed to reach nodes on
// loopback (the tests' nodes are there).
func startGateway(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	cfg.AllowPrivateAddrs = true
	return startGatewayAsIs(t, cfg)
}

// startGatewayAsIs runs a gateway with cfg as given.
func startGatewayAsIs(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Assets == nil {
		cfg.Assets = testAssets()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg := prometheus.NewRegistry()
	if cfg.Registerer == nil {
		cfg.Registerer = reg
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	addr := g.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &testGateway{Gateway: g, reg: reg, client: client}
}

// do sends method url (with any host: the connection goes to the gateway).
func (tg *testGateway) do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return testutil.Do(t, tg.client, method, url, body, hdr...)
}

func (tg *testGateway) get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return tg.do(t, http.MethodGet, url, nil, hdr...)
}

// counter returns the value of the counter name with labels (0 if absent).
func (tg *testGateway) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := tg.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// signedRecord returns a valid record of a node keyed by seed.
func signedRecord(t *testing.T, seed byte, httpURL string, now time.Time) noderecord.Signed {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	pub := priv.Public().(ed25519.PublicKey)
	h := sha256.Sum256([]byte{seed})
	rec := noderecord.Record{
		NodeID:       noderecord.NodeIDFromKey(pub),
		PublicKey:    pub,
		HTTP:         httpURL,
		WebTransport: "https://127.0.0.1:4433/verity/v1",
		CertHashes:   []noderecord.CertHash{{SHA256: h[:], NotBefore: now.Add(-time.Hour), NotAfter: now.Add(13 * 24 * time.Hour)}},
		Issued:       now.Add(-time.Minute),
		Expires:      now.Add(time.Hour),
	}
	signed, err := noderecord.Sign(rec, priv)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}
