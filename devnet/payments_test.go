package devnet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/wasmclient"
)

// wtDialer opens WebTransport streams for the worker's client code run
// natively, pinning the node's certificate hashes as a browser does.
type wtDialer struct {
	mu       sync.Mutex
	sessions map[string]*webtransport.Session
	trs      []*webtransport.Transport
}

func (d *wtDialer) DialStream(ctx context.Context, n wasmclient.Node) (wasmclient.Stream, error) {
	if n.WebTransport == "" {
		return nil, wasmclient.ErrNoAddress
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sess := d.sessions[n.ID]
	if sess == nil {
		hashes := n.CertHashBytes()
		tr := &webtransport.Transport{
			TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, // replaced by the hash pin
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					h := sha256.Sum256(raw[0])
					for _, w := range hashes {
						if string(w) == string(h[:]) {
							return nil
						}
					}
					return errors.New("certificate not pinned")
				},
			},
			QUICConfig: &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true},
		}
		_, s, err := tr.Dial(ctx, n.WebTransport, nil)
		if err != nil {
			tr.Close()
			return nil, err
		}
		d.trs = append(d.trs, tr)
		d.sessions[n.ID] = s
		sess = s
	}
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &wtStream{str}, nil
}

func (d *wtDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		s.CloseWithError(0, "")
	}
	for _, tr := range d.trs {
		tr.Close()
	}
}

type wtStream struct{ *webtransport.Stream }

func (s *wtStream) CloseWrite() error { return s.Stream.Close() }
func (s *wtStream) CloseRead() error  { s.CancelRead(0); return nil }
func (s *wtStream) Close() error {
	s.CancelRead(0)
	s.CancelWrite(0)
	return nil
}

// The money path end to end: the worker's client code gets a voucher from
// the gateway, fetches over WebTransport from the devnet's nodes paying
// with receipts; the nodes hold the receipts, settle them with the
// coordinator's ledger, and the account is debited by exactly what the
// nodes are credited.
func TestWorkerPaysNodesAndNodesSettle(t *testing.T) {
	d, hc := start(t, t.TempDir())
	workerPaysAndNodesSettle(t, d, hc, &wasmclient.HTTPSessionLoader{Origin: d.SiteURL(SiteName), Client: hc})
}

// keyCounter counts the session loads that asked for a voucher with a
// new session key.
type keyCounter struct {
	*wasmclient.HTTPSessionLoader
	mu   sync.Mutex
	keys map[string]bool
}

func (k *keyCounter) LoadSessionKey(ctx context.Context, key string) (*wasmclient.Session, error) {
	s, err := k.HTTPSessionLoader.LoadSessionKey(ctx, key)
	if err == nil && key != "" && s.Voucher != "" {
		k.mu.Lock()
		k.keys[key] = true
		k.mu.Unlock()
	}
	return s, err
}

// The same with vouchers so small (a 1 MiB cap per node, 2 MiB over all)
// that a visit runs through several: streams go on under the next voucher
// (asked for before the current one ran out), and the nodes are still
// paid exactly the bytes the worker verified, each byte once.
func TestWorkerPaysAcrossVouchers(t *testing.T) {
	d, hc := startWith(t, Config{DataDir: t.TempDir(), GatewayPayments: gateway.PaymentsConfig{Budget: 2 << 20, NodeCap: 1 << 20}})
	kc := &keyCounter{HTTPSessionLoader: &wasmclient.HTTPSessionLoader{Origin: d.SiteURL(SiteName), Client: hc}, keys: map[string]bool{}}
	workerPaysAndNodesSettle(t, d, hc, kc)
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if len(kc.keys) < 2 {
		t.Fatalf("%d vouchers for a visit of more than one voucher's cap", len(kc.keys))
	}
	t.Logf("%d vouchers", len(kc.keys))
}

func workerPaysAndNodesSettle(t *testing.T, d *Devnet, hc *http.Client, loader wasmclient.SessionLoader) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dialer := &wtDialer{sessions: map[string]*webtransport.Session{}}
	defer dialer.close()
	c, err := wasmclient.New(wasmclient.Config{
		Session:    loader,
		Transports: []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: dialer}},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var verified int64
	for _, p := range []string{"/media/measurements.csv", "/images/mandelbrot.png", "/index.html"} {
		resp, err := c.Fetch(ctx, wasmclient.FetchRequest{Path: p})
		if err != nil {
			t.Fatalf("fetch %s: %v", p, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.Transport != wasmclient.TransportWebTransport {
			t.Fatalf("fetch %s: %d bytes over %s: %v", p, n, resp.Transport, err)
		}
		verified += n
	}
	acct := d.cfg.Account
	held := func() uint64 {
		var sum uint64
		for _, n := range d.Nodes() {
			sum += n.Uncommitted()[acct]
		}
		return sum
	}
	// The last receipt of each stream arrives with its FIN; the file
	// bytes leave out the directory blocks the receipts also cover, so
	// the count is taken once it stops moving.
	var prev uint64
	testutil.EventuallyErr(t, 10*time.Second, "the nodes to hold every receipt", func() error {
		total := held()
		if total < uint64(verified) {
			return fmt.Errorf("nodes hold receipts for %d bytes; the worker received %d verified file bytes", total, verified)
		}
		if total != prev {
			prev = total
			time.Sleep(200 * time.Millisecond)
			return fmt.Errorf("nodes hold receipts for %d bytes, still moving", total)
		}
		return nil
	})
	total := held()
	l := d.Coordinator().Ledger()
	before, err := l.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	before0, err := l.Dashboard(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	var applied, earned uint64
	for _, n := range d.Nodes() {
		a, err := n.SettleNow(ctx)
		if err != nil {
			t.Fatalf("settle %s: %v", n.ID(), err)
		}
		applied += a
		e, err := l.Earnings(ctx, n.ID())
		if err != nil {
			t.Fatal(err)
		}
		earned += e.From[acct]
	}
	after, err := l.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if applied != total || earned != total || before.Balance-after.Balance != int64(total) {
		t.Fatalf("held %d, applied %d, earned %d, balance %d → %d", total, applied, earned, before.Balance, after.Balance)
	}
	if held() != 0 {
		t.Fatalf("%d bytes still unsettled", held())
	}
	// The vouchers name the site: the dashboard attributes the nodes'
	// settlements to it.
	dash, err := l.Dashboard(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if got := dash.Sites[SiteName].Nodes - before0.Sites[SiteName].Nodes; got != total {
		t.Fatalf("site %s: %d bytes settled to nodes by this visit, want %d (dashboard %+v)", SiteName, got, total, dash.Sites)
	}
	t.Logf("worker verified %d file bytes; nodes settled %d bytes of blocks", verified, total)
}

// An account below its freezing threshold gets no voucher: the worker
// fetches everything through the gateway path, and nodes serve nothing
// for it.
func TestFrozenAccountUsesGatewayPath(t *testing.T) {
	d, hc := startWith(t, Config{DataDir: t.TempDir(), Funding: 1})
	if a, err := d.Coordinator().Ledger().Account(t.Context(), "default"); err != nil || !a.Frozen {
		t.Fatalf("account %+v, %v: want frozen", a, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dialer := &wtDialer{sessions: map[string]*webtransport.Session{}}
	defer dialer.close()
	site, _ := url.Parse(d.SiteURL(SiteName))
	c, err := wasmclient.New(wasmclient.Config{
		Session:    &wasmclient.HTTPSessionLoader{Origin: site.String(), Client: hc},
		Transports: []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: dialer}},
		Fallback:   &wasmclient.HTTPTransport{Origin: site.String(), Client: hc},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Fetch(ctx, wasmclient.FetchRequest{Path: "/images/mandelbrot.png"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n == 0 || resp.Transport != wasmclient.TransportGateway {
		t.Fatalf("%d bytes over %s: %v; want the gateway path", n, resp.Transport, err)
	}
	for _, nd := range d.Nodes() {
		if u := nd.Uncommitted()["default"]; u != 0 {
			t.Fatalf("node %s holds %d bytes of a frozen account", nd.ID(), u)
		}
	}
}
