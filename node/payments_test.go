package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

const testAccount = "acme"

// payNet is a coordinator with its ledger, a gateway key published in
// shared state, a funded account and one node joined to it.
type payNet struct {
	bus   *events.Bus
	coord *coordinator.Coordinator
	gwKey ed25519.PrivateKey
	node  *node.Node
	fx    *fixture
	sess  *webtransport.Session
	url   string // the coordinator
	pc    node.PaymentConfig
	extra []string // ids of nodes added with addNode, named by the workers' vouchers too
	// nodeConfig, when set, changes the configuration of nodes added next.
	nodeConfig func(*node.Config)
}

func newPayNet(t *testing.T, pc node.PaymentConfig, fund uint64, ledgerOpts ...func(*ledger.Config)) *payNet {
	t.Helper()
	return newPayNetFixture(t, buildFixture(t), pc, fund, ledgerOpts...)
}

// newPayNetFixture is newPayNet with its node holding fx.
func newPayNetFixture(t testing.TB, fx *fixture, pc node.PaymentConfig, fund uint64, ledgerOpts ...func(*ledger.Config)) *payNet {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	_, gwKey, _ := ed25519.GenerateKey(rand.Reader)
	if err := coordinator.PublishGatewayKey(t.Context(), bus, "gw-test", gwKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	lc := ledger.Config{FreezeBelow: 1 << 20}
	for _, o := range ledgerOpts {
		o(&lc)
	}
	c, err := coordinator.New(t.Context(), coordinator.Config{
		Bus: bus, HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: missedHeartbeats, AllowPrivateAddrs: true, Logger: log,
		Ledger: lc,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Ledger().CreateAccount(t.Context(), testAccount, 0); err != nil {
		t.Fatal(err)
	}
	if fund > 0 {
		if _, err := c.Ledger().TopUp(t.Context(), testAccount, fund); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	pn := &payNet{bus: bus, coord: c, gwKey: gwKey, fx: fx, url: srv.URL, pc: pc}
	pn.node, pn.sess = pn.addNode(t)
	return pn
}

// addNode starts a node holding the fixture, joined to the coordinator,
// and waits until it knows the gateway key.
func (pn *payNet) addNode(t testing.TB) (*node.Node, *webtransport.Session) {
	t.Helper()
	cfg := node.Config{Coordinator: pn.url, OperatorToken: testOperator(t, pn.coord), Payments: pn.pc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if pn.nodeConfig != nil {
		pn.nodeConfig(&cfg)
	}
	n := newNode(t, cfg)
	roots, err := n.ImportCAR(t.Context(), bytes.NewReader(pn.fx.car))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PinLocal(roots...); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess, closeSess, err := dialWT(ctx, n.WebTransportURL(), n.Record().Record.CertHashes[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeSess)
	pn.extra = append(pn.extra, n.ID())
	// The node learns the gateway key from the coordinator after joining.
	w := newTestWorker(t, pn.gwKey, testAccount, time.Hour, n)
	testutil.EventuallyErr(t, 10*time.Second, "the node to learn the gateway key", func() error {
		_, err := w.fetchOn(ctx, sess, pn.fx, "a.txt", true)
		var se *wire.StatusError
		if err != nil && (!errors.As(err, &se) || se.PaymentCode != "unknown_gateway" || ctx.Err() != nil) {
			t.Fatalf("first paid request: %v", err)
		}
		return err
	})
	return n, sess
}

// testWorker plays the service worker: a session key, a voucher from the
// test gateway key, and receipts for the blocks it verifies.
type testWorker struct {
	signer *payment.Signer
	priv   ed25519.PrivateKey // the session key, to forge receipts with
	enc    string
	node   payment.NodeKey
	// receipts, when set, replaces the receipts sent (forgeries).
	receipts func(r payment.Receipt) []byte
	// credit is the wire.HeaderCredit of the last response head, order
	// its wire.HeaderReceiptOrder.
	credit, order string
	// bao: offer the bao16 block encoding, and verify it when it comes.
	bao bool
}

func (pn *payNet) worker(t *testing.T, account string, ttl time.Duration) *testWorker {
	t.Helper()
	return newTestWorkerFor(t, pn.gwKey, account, ttl, pn.node.ID(), pn.extra...)
}

func newTestWorker(t testing.TB, gwKey ed25519.PrivateKey, account string, ttl time.Duration, n *node.Node) *testWorker {
	t.Helper()
	return newTestWorkerFor(t, gwKey, account, ttl, n.ID())
}

// newTestWorkerFor makes a worker paying nodeID with a voucher naming
// nodeID and also, when given, the nodes others.
func newTestWorkerFor(t testing.TB, gwKey ed25519.PrivateKey, account string, ttl time.Duration, nodeID string, others ...string) *testWorker {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(seed)})
	if err != nil {
		t.Fatal(err)
	}
	var tags []payment.NodeTag
	for _, id := range append([]string{nodeID}, others...) {
		tags = append(tags, payment.TagOf(mustNodeKey(t, id)))
	}
	v := payment.Voucher{Account: account, Session: s.SessionKey(), Budget: 1 << 30, NodeCap: 1 << 30, Nodes: tags,
		Expires: time.Now().Add(ttl).Truncate(time.Second)}
	_, _ = rand.Read(v.Nonce[:])
	if err := v.Sign(gwKey); err != nil {
		t.Fatal(err)
	}
	if ttl > 0 {
		if err := s.SetVoucher(v); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	nk, err := payment.ParseNodeID(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	return &testWorker{signer: s, priv: ed25519.NewKeyFromSeed(seed), enc: base64.StdEncoding.EncodeToString(enc), node: nk}
}

// fetch gets path below the fixture root on a new stream with the voucher,
// verifying the CAR and, when pay, sending a receipt after every block's
// worth and at the end. It returns the verified bytes.
func (w *testWorker) fetch(ctx context.Context, pn *payNet, path string, pay bool) (int64, error) {
	return w.fetchOn(ctx, pn.sess, pn.fx, path, pay)
}

func (w *testWorker) fetchOn(ctx context.Context, sess *webtransport.Session, fx *fixture, path string, pay bool) (int64, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	defer str.CancelRead(0)
	req := &wire.Request{Target: "", Header: wire.Header{"accept": "application/vnd.ipld.car; version=1; order=dfs; dups=y"}}
	root, err := cid.Parse(fx.root.String())
	if err != nil {
		return 0, err
	}
	vreq := verify.Request{Root: root, Path: []string{path}}
	req.Target = vreq.Target()
	if w.enc != "" {
		req.Header.Set(wire.HeaderVoucher, w.enc)
	}
	if w.bao {
		req.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
	}
	if _, err := req.WriteTo(str); err != nil {
		return 0, err
	}
	send := func(r payment.Receipt, signed bool, err error) {
		if !signed || err != nil || !pay {
			return
		}
		b, _ := r.MarshalBinary()
		if w.receipts != nil {
			b = w.receipts(r)
		}
		_, _ = str.Write(b)
	}
	rec := &errRecorder{r: str}
	br := bufio.NewReader(rec)
	resp, err := wire.ReadResponse(br)
	if err != nil {
		return 0, err
	}
	if err := resp.Err(br); err != nil {
		return 0, err
	}
	w.credit = resp.Header.Get(wire.HeaderCredit)
	w.order = resp.Header.Get(wire.HeaderReceiptOrder)
	vr := verify.NewReader(br, vreq, verify.Options{Bao: resp.BlockEncoding() == wire.BlocksBao16, OnBlock: func(_ cid.CID, n int) {
		send(w.signer.Verified(w.node, uint64(n)))
	}})
	_, err = io.Copy(io.Discard, vr)
	send(w.signer.Flush(w.node))
	_ = str.Close()
	if err != nil && rec.err != nil {
		err = rec.err // the transport's error, with its reset code
	}
	return vr.Stats().Bytes, err
}

// errRecorder keeps the first read error other than EOF.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func resetCode(err error) (webtransport.StreamErrorCode, bool) {
	var se *webtransport.StreamError
	if errors.As(err, &se) {
		return se.ErrorCode, true
	}
	return 0, false
}

// A paid stream: the node checks and stores the worker's receipts, settles
// them through its coordinator, the ledger debits the account and credits
// the node exactly once, and a replayed batch changes nothing.
func TestPaidStreamReceiptsStoredAndSettled(t *testing.T) {
	const fund = 64 << 20
	pn := newPayNet(t, node.PaymentConfig{Policy: payment.SettlePolicy{MaxInterval: time.Hour}}, fund)
	ctx := t.Context()
	w := pn.worker(t, testAccount, time.Hour)
	got, err := w.fetch(ctx, pn, "big.bin", true)
	if err != nil {
		t.Fatal(err)
	}
	if got < int64(len(pn.fx.big)) {
		t.Fatalf("verified %d bytes, want at least %d", got, len(pn.fx.big))
	}
	// The last receipt comes with the client's FIN, after the body.
	testutil.EventuallyErr(t, 10*time.Second, "the node to hold the last receipt", func() error {
		if ent, _ := pn.node.Receipts(w.signer.SessionKey()); ent.Receipt.Bytes != uint64(got) {
			return fmt.Errorf("node holds a receipt for %d bytes, want %d", ent.Receipt.Bytes, got)
		}
		return nil
	})
	before, err := pn.coord.Ledger().Account(ctx, testAccount)
	if err != nil {
		t.Fatal(err)
	}
	// The probe's receipt may have been settled already, by a settlement
	// the node started on its own: count what this one adds.
	earnBefore, err := pn.coord.Ledger().Earnings(ctx, pn.node.ID())
	if err != nil {
		t.Fatal(err)
	}
	applied, err := pn.node.SettleNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The probe request of newPayNet (a.txt) was paid too.
	if applied < uint64(got) {
		t.Fatalf("settled %d bytes, want at least %d", applied, got)
	}
	after, err := pn.coord.Ledger().Account(ctx, testAccount)
	if err != nil {
		t.Fatal(err)
	}
	if before.Balance-after.Balance != int64(applied) {
		t.Fatalf("balance %d → %d, want a debit of %d", before.Balance, after.Balance, applied)
	}
	earn, err := pn.coord.Ledger().Earnings(ctx, pn.node.ID())
	if err != nil {
		t.Fatal(err)
	}
	if earn.Earned-earnBefore.Earned != applied || earn.From[testAccount]-earnBefore.From[testAccount] != applied {
		t.Fatalf("earnings %+v after %+v, want %d more from %s", earn, earnBefore, applied, testAccount)
	}
	if ent, _ := pn.node.Receipts(w.signer.SessionKey()); ent.Settled != uint64(got) {
		t.Fatalf("session settled %d, want %d", ent.Settled, got)
	}
	if u := pn.node.Uncommitted()[testAccount]; u != 0 {
		t.Fatalf("uncommitted after settling: %d", u)
	}
	// Nothing left to settle: a second settlement applies nothing.
	if again, err := pn.node.SettleNow(ctx); err != nil || again != 0 {
		t.Fatalf("second SettleNow = %d, %v", again, err)
	}
	// The same batch replayed to the ledger changes nothing.
	ent, _ := pn.node.Receipts(w.signer.SessionKey())
	vb, _ := ent.Voucher.MarshalBinary()
	rb, _ := ent.Receipt.MarshalBinary()
	nk, _ := payment.ParseNodeID(pn.node.ID())
	res, err := pn.coord.Ledger().Settle(ctx, nodeproto.Batch{Node: nk, Account: testAccount, Items: []nodeproto.BatchItem{{Voucher: vb, Receipt: rb}}})
	if err != nil || res.Applied != 0 {
		t.Fatalf("replayed batch: applied %d, %v", res.Applied, err)
	}
	final, _ := pn.coord.Ledger().Account(ctx, testAccount)
	if final.Balance != after.Balance {
		t.Fatalf("replay moved the balance %d → %d", after.Balance, final.Balance)
	}
}

// A worker that sends a voucher but no receipts gets at most the credit
// window, then its stream is reset with CodePaymentTimeout.
func TestUnpayingWorkerCutAtCreditWindow(t *testing.T) {
	const window = 512 << 10
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: 2 * time.Second}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	got, err := w.fetch(t.Context(), pn, "big.bin", false)
	code, ok := resetCode(err)
	if !ok || code != wire.CodePaymentTimeout {
		t.Fatalf("fetch without receipts: %v (code %d), want a reset with CodePaymentTimeout", err, code)
	}
	if got > window {
		t.Fatalf("verified %d bytes without paying, window %d", got, window)
	}
	// The same worker paying is served in full.
	w2 := pn.worker(t, testAccount, time.Hour)
	if got, err := w2.fetch(t.Context(), pn, "big.bin", true); err != nil || got < int64(len(pn.fx.big)) {
		t.Fatalf("paying worker: %d bytes, %v", got, err)
	}
}

// A paid stream's head announces the node's credit window, and a worker
// that signs once per half window (the most the worker does) is served
// in full without ever waiting out the receipt timeout; an unpaid
// stream's head announces nothing.
func TestCreditWindowAnnounced(t *testing.T) {
	const window = 1 << 20
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: time.Minute}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	w.signer.SetSignEvery(w.node, window/2)
	got, err := w.fetch(t.Context(), pn, "big.bin", true)
	if err != nil || got < int64(len(pn.fx.big)) {
		t.Fatalf("worker signing every %d bytes: %d bytes, %v", window/2, got, err)
	}
	if w.credit != strconv.Itoa(window) {
		t.Fatalf("%s %q, want %d", wire.HeaderCredit, w.credit, window)
	}
	if w.order != wire.ReceiptOrderAny {
		t.Fatalf("%s %q, want %q: the node ignores overtaken receipts", wire.HeaderReceiptOrder, w.order, wire.ReceiptOrderAny)
	}
	if r, ok := w.signer.Latest(w.node); !ok || r.Seq > uint64(got)/(window/2)+1 {
		t.Fatalf("%d receipts for %d bytes, want one per %d", r.Seq, got, window/2)
	}
	unpaid := pn.worker(t, testAccount, time.Hour)
	unpaid.enc = ""
	if _, err := unpaid.fetch(t.Context(), pn, "a.txt", false); err != nil {
		t.Fatal(err)
	}
	if unpaid.credit != "" || unpaid.order != "" {
		t.Fatalf("an unpaid stream announced %s %q, %s %q", wire.HeaderCredit, unpaid.credit, wire.HeaderReceiptOrder, unpaid.order)
	}
}

// Vouchers the node must refuse get a 402 naming the reason before any
// content.
func TestBadVouchersRefused(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	ctx := t.Context()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	forgedSig := pn.worker(t, testAccount, time.Hour)
	raw, _ := base64.StdEncoding.DecodeString(forgedSig.enc)
	raw[len(raw)-1] ^= 1
	forgedSig.enc = base64.StdEncoding.EncodeToString(raw)

	garbage := pn.worker(t, testAccount, time.Hour)
	garbage.enc = base64.StdEncoding.EncodeToString([]byte("not a voucher"))

	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	var otherNode payment.NodeKey
	copy(otherNode[:], otherPub)
	notMine := newTestWorkerFor(t, pn.gwKey, testAccount, time.Hour, otherNode.String())
	notMine.node = mustNodeKey(t, pn.node.ID())

	for _, tc := range []struct {
		name string
		w    *testWorker
		code string
	}{
		{"unknown gateway", newTestWorker(t, otherKey, testAccount, time.Hour, pn.node), "unknown_gateway"},
		{"forged signature", forgedSig, "bad_signature"},
		{"expired", newTestWorker(t, pn.gwKey, testAccount, -time.Minute, pn.node), "expired"},
		{"malformed", garbage, "malformed"},
		// A voucher for a session the gateway gave other nodes: serving
		// under it would be unpaid.
		{"names other nodes", notMine, "wrong_node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.w.fetch(ctx, pn, "a.txt", true)
			var se *wire.StatusError
			if !errors.As(err, &se) || se.Status != 402 || se.PaymentCode != tc.code {
				t.Fatalf("fetch: %v, want 402 %s", err, tc.code)
			}
		})
	}
	// Another voucher for a session key the node already holds.
	w := pn.worker(t, testAccount, time.Hour)
	if _, err := w.fetch(ctx, pn, "a.txt", true); err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: testAccount, Session: w.signer.SessionKey(), Budget: 1 << 20, NodeCap: 1 << 20,
		Nodes: []payment.NodeTag{payment.TagOf(mustNodeKey(t, pn.node.ID()))}, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	_, _ = rand.Read(v.Nonce[:])
	if err := v.Sign(pn.gwKey); err != nil {
		t.Fatal(err)
	}
	b, _ := v.MarshalBinary()
	w.enc = base64.StdEncoding.EncodeToString(b)
	_, err := w.fetch(ctx, pn, "a.txt", true)
	var se *wire.StatusError
	if !errors.As(err, &se) || se.PaymentCode != "wrong_session" {
		t.Fatalf("second voucher for a session: %v", err)
	}
}

// Receipts the node must refuse (forged, for another node, going
// backwards) end the stream with CodePaymentRefused.
func TestBadReceiptsResetStream(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	// The receipt going backwards is the worker's second, sent once 1 MiB
	// is verified; the first extends the node's credit to 1.5 MiB. A file
	// within that would be sent whole before the node reads the bad one,
	// and whether the stream still had bytes to cut would be a race: this
	// case's file is larger than the credit the first receipt gives.
	pnLong := newPayNetFixture(t, buildFixtureSize(t, 3<<20), node.PaymentConfig{}, 64<<20)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	var otherNode payment.NodeKey
	copy(otherNode[:], otherPriv.Public().(ed25519.PublicKey))

	var first payment.Receipt
	var w *testWorker
	for _, tc := range []struct {
		name  string
		forge func(r payment.Receipt) []byte
	}{
		{"bytes backwards", func(r payment.Receipt) []byte {
			b, _ := r.MarshalBinary()
			if r.Seq == 1 {
				first = r
				return b
			}
			// A newer sequence covering fewer bytes than the first,
			// signed by the session key (a buggy or hostile worker).
			r.Bytes = first.Bytes - 1
			_ = r.Sign(w.priv)
			bad, _ := r.MarshalBinary()
			return bad
		}},
		{"over budget", func(r payment.Receipt) []byte {
			r.Bytes = 1<<30 + 1 // beyond the voucher's budget, signed by the session key
			_ = r.Sign(w.priv)
			b, _ := r.MarshalBinary()
			return b
		}},
		{"forged signature", func(r payment.Receipt) []byte {
			b, _ := r.MarshalBinary()
			b[len(b)-1] ^= 1
			return b
		}},
		{"other session key", func(r payment.Receipt) []byte {
			r.Session[0] ^= 1
			_ = r.Sign(otherPriv)
			b, _ := r.MarshalBinary()
			return b
		}},
		{"other node", func(r payment.Receipt) []byte {
			r.Node = otherNode
			b, _ := r.MarshalBinary()
			return b
		}},
		{"truncated", func(r payment.Receipt) []byte {
			b, _ := r.MarshalBinary()
			return b[:100]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pn := pn
			if tc.name == "bytes backwards" {
				pn = pnLong
			}
			w = pn.worker(t, testAccount, time.Hour)
			w.receipts = tc.forge
			_, err := w.fetch(t.Context(), pn, "big.bin", true)
			code, ok := resetCode(err)
			if tc.name == "truncated" {
				// A cut receipt is only noticed at the client's FIN,
				// after the body: the receipt is not stored.
				if _, held := pn.node.Receipts(w.signer.SessionKey()); held {
					if e, _ := pn.node.Receipts(w.signer.SessionKey()); e.Receipt.Seq != 0 {
						t.Fatalf("truncated receipt stored: %+v", e.Receipt)
					}
				}
				return
			}
			if !ok || code != wire.CodePaymentRefused {
				t.Fatalf("fetch: %v (code %d), want a reset with CodePaymentRefused", err, code)
			}
			if e, held := pn.node.Receipts(w.signer.SessionKey()); held && e.Receipt.Bytes > uint64(len(pn.fx.big)+4096) {
				t.Fatalf("node stored a refused receipt: %+v", e.Receipt)
			}
		})
	}
}

// A receipt older than one the node already accepted for the session (it
// was overtaken: the worker signs one sequence for all its streams to a
// node, and a receipt sent on one stream, or one peer connection, may
// arrive after a newer one sent on another) pays nothing new and is
// ignored: the stream goes on, and the node keeps the newest receipt.
func TestOvertakenReceiptIgnored(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	var held, newest payment.Receipt
	w.receipts = func(r payment.Receipt) []byte {
		b, _ := r.MarshalBinary()
		if r.Seq%2 == 0 {
			held = r // overtaken by the next one
			return nil
		}
		newest = r
		if held.Seq == 0 {
			return b
		}
		old, _ := held.MarshalBinary()
		held = payment.Receipt{}
		return append(b, old...) // the newer one, then the one it overtook
	}
	n, err := w.fetch(t.Context(), pn, "big.bin", true)
	if err != nil || n < int64(len(pn.fx.big)) {
		t.Fatalf("fetch with overtaken receipts: %d bytes, %v; want the CAR of %d bytes", n, err, len(pn.fx.big))
	}
	if newest.Seq < 3 {
		t.Fatalf("the worker signed %d receipts; want several", newest.Seq)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the node to hold the newest receipt", func() error {
		if e, held := pn.node.Receipts(w.signer.SessionKey()); !held || e.Receipt != newest {
			return fmt.Errorf("node holds seq %d (%d bytes); want seq %d (%d bytes)", e.Receipt.Seq, e.Receipt.Bytes, newest.Seq, newest.Bytes)
		}
		return nil
	})
}

// A receipt the node already accepted, or already ignored as overtaken,
// sent again is a replay: the node refuses it and resets the stream, and
// does not check the same signature again and again for a client that
// repeats an old receipt for free.
func TestReplayedReceiptResetsStream(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	var first payment.Receipt
	w.receipts = func(r payment.Receipt) []byte {
		b, _ := r.MarshalBinary()
		if r.Seq == 1 {
			first = r
			return b
		}
		old, _ := first.MarshalBinary()
		for range 32 {
			b = append(b, old...) // the newer one, then the first again and again
		}
		return b
	}
	_, err := w.fetch(t.Context(), pn, "big.bin", true)
	if code, ok := resetCode(err); !ok || code != wire.CodePaymentRefused {
		t.Fatalf("fetch replaying a receipt: %v (code %d), want a reset with CodePaymentRefused", err, code)
	}
}

// A client that sends only receipts the node ignores as overtaken (it
// signed a far sequence once, then lower ones covering no new bytes) pays
// nothing with them: the stream gets no more than the credit window
// beyond the bytes receipted and is reset when the receipt timeout
// passes, however many such receipts come meanwhile.
func TestOvertakenReceiptsBuyNoCredit(t *testing.T) {
	const window = 512 << 10
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: time.Second}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	var first payment.Receipt
	const far = 1000
	w.receipts = func(r payment.Receipt) []byte {
		if r.Seq == 1 {
			first = r
		} else {
			// Signed by the session key: seq far once, then far-1,
			// far-2, ..., each new to the node and behind its latest.
			r.Bytes, r.Seq = first.Bytes, far-(r.Seq-2)
			_ = r.Sign(w.priv)
		}
		b, _ := r.MarshalBinary()
		return b
	}
	got, err := w.fetch(t.Context(), pn, "big.bin", true)
	if code, ok := resetCode(err); !ok || code != wire.CodePaymentTimeout {
		t.Fatalf("fetch paying with overtaken receipts: %v (code %d), want a reset with CodePaymentTimeout", err, code)
	}
	if limit := int64(first.Bytes) + window; got > limit {
		t.Fatalf("verified %d bytes, %d receipted: more than the window %d beyond", got, first.Bytes, window)
	}
	if e, _ := pn.node.Receipts(w.signer.SessionKey()); e.Receipt.Bytes != first.Bytes || e.Receipt.Seq != far {
		t.Fatalf("node holds seq %d (%d bytes); want seq %d (%d bytes)", e.Receipt.Seq, e.Receipt.Bytes, far, first.Bytes)
	}
}

// A frozen account's vouchers are refused with account_frozen, once the
// node learns of the freeze from its coordinator; a top-up unfreezes it.
func TestFrozenAccountRefused(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	ctx := t.Context()
	if _, err := pn.coord.Ledger().CreateAccount(ctx, "broke", 0); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the frozen account refused", func() error {
		w := pn.worker(t, "broke", time.Hour)
		_, err := w.fetch(ctx, pn, "a.txt", true)
		var se *wire.StatusError
		if errors.As(err, &se) && se.Status == 402 && se.PaymentCode == "account_frozen" {
			return nil
		}
		return fmt.Errorf("frozen account served: %v", err)
	})
	if _, err := pn.coord.Ledger().TopUp(ctx, "broke", 64<<20); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the topped-up account served", func() error {
		w := pn.worker(t, "broke", time.Hour)
		_, err := w.fetch(ctx, pn, "a.txt", true)
		return err
	})
}

// Without a voucher a node serves unpaid unless it requires payment.
func TestVoucherOptionalUnlessRequired(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	anon := pn.worker(t, testAccount, time.Hour)
	anon.enc = ""
	if _, err := anon.fetch(t.Context(), pn, "a.txt", false); err != nil {
		t.Fatalf("unpaid request: %v", err)
	}
	strict := newPayNet(t, node.PaymentConfig{Require: true}, 64<<20)
	anon2 := strict.worker(t, testAccount, time.Hour)
	anon2.enc = ""
	_, err := anon2.fetch(t.Context(), strict, "a.txt", false)
	var se *wire.StatusError
	if !errors.As(err, &se) || se.Status != 402 || se.PaymentCode != wire.PaymentRequired {
		t.Fatalf("unpaid request to a node requiring payment: %v", err)
	}
}

// The node settles on its own when its policy says so: here as soon as
// anything is unsettled.
func TestPolicySettlesOnItsOwn(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{Policy: payment.SettlePolicy{MaxBytes: 1}, SettleCheck: 20 * time.Millisecond}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	got, err := w.fetch(t.Context(), pn, "big.bin", true)
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the session settled", func() error {
		e, _ := pn.node.Receipts(w.signer.SessionKey())
		if e.Settled == uint64(got) && pn.node.Uncommitted()[testAccount] == 0 {
			return nil
		}
		return fmt.Errorf("session settled %d of %d bytes", e.Settled, got)
	})
	earn, err := pn.coord.Ledger().Earnings(t.Context(), pn.node.ID())
	if err != nil || earn.Earned < uint64(got) {
		t.Fatalf("earnings %+v, %v", earn, err)
	}
}

// One session paying two nodes, which settle it at the same moment: the
// ledger applies both (compare-and-set), each node is credited its own
// receipts and the account is debited their sum, once.
func TestTwoNodesSettleOneSessionConcurrently(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{Policy: payment.SettlePolicy{MaxInterval: time.Hour}}, 64<<20)
	nodeB, sessB := pn.addNode(t)
	ctx := t.Context()
	wA := pn.worker(t, testAccount, time.Hour)
	wB := *wA
	wB.node = mustNodeKey(t, nodeB.ID())
	gotA, err := wA.fetch(ctx, pn, "big.bin", true)
	if err != nil {
		t.Fatal(err)
	}
	gotB, err := wB.fetchOn(ctx, sessB, pn.fx, "big.bin", true)
	if err != nil {
		t.Fatal(err)
	}
	key := wA.signer.SessionKey()
	testutil.EventuallyErr(t, 10*time.Second, "both nodes to hold their last receipts", func() error {
		a, _ := pn.node.Receipts(key)
		b, _ := nodeB.Receipts(key)
		if a.Receipt.Bytes == uint64(gotA) && b.Receipt.Bytes == uint64(gotB) {
			return nil
		}
		return fmt.Errorf("receipts held %d and %d, want %d and %d", a.Receipt.Bytes, b.Receipt.Bytes, gotA, gotB)
	})
	before, _ := pn.coord.Ledger().Account(ctx, testAccount)
	var wg sync.WaitGroup
	applied := make([]uint64, 2)
	errs := make([]error, 2)
	for i, n := range []*node.Node{pn.node, nodeB} {
		wg.Go(func() { applied[i], errs[i] = n.SettleNow(ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	after, _ := pn.coord.Ledger().Account(ctx, testAccount)
	if before.Balance-after.Balance != int64(applied[0]+applied[1]) || applied[1] < uint64(gotB) || applied[0] < uint64(gotA) {
		t.Fatalf("applied %v for %d and %d bytes; balance %d → %d", applied, gotA, gotB, before.Balance, after.Balance)
	}
	for i, n := range []*node.Node{pn.node, nodeB} {
		e, err := pn.coord.Ledger().Earnings(ctx, n.ID())
		if err != nil || e.Earned != applied[i] {
			t.Fatalf("node %d earnings %+v, want %d (%v)", i, e, applied[i], err)
		}
	}
}

// What the balance cannot cover (no overdraft allowed here) is deferred:
// the node keeps those receipts unsettled and settles them after a top-up.
func TestDeferredReceiptsSettleAfterTopUp(t *testing.T) {
	const fund = 1536 << 10
	pn := newPayNet(t, node.PaymentConfig{Policy: payment.SettlePolicy{MaxInterval: time.Hour}, SettleCheck: time.Hour}, fund,
		func(c *ledger.Config) { c.MaxOverdraft = -1 })
	ctx := t.Context()
	var total uint64
	for range 2 {
		w := pn.worker(t, testAccount, time.Hour)
		got, err := w.fetch(ctx, pn, "big.bin", true)
		if err != nil {
			t.Fatal(err)
		}
		total += uint64(got)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the node to hold every receipt", func() error {
		if held := pn.node.Uncommitted()[testAccount]; held < total {
			return fmt.Errorf("held %d, delivered %d", held, total)
		}
		return nil
	})
	held := pn.node.Uncommitted()[testAccount]
	first, err := pn.node.SettleNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first != fund || pn.node.Uncommitted()[testAccount] != held-fund {
		t.Fatalf("first settlement applied %d of %d (balance %d); still held %d", first, held, fund, pn.node.Uncommitted()[testAccount])
	}
	if _, err := pn.coord.Ledger().TopUp(ctx, testAccount, 8<<20); err != nil {
		t.Fatal(err)
	}
	// The node's own settler may get there first (the pushed balances
	// make the policy due): either way everything ends up settled once.
	if _, err := pn.node.SettleNow(ctx); err != nil {
		t.Fatal(err)
	}
	if left := pn.node.Uncommitted()[testAccount]; left != 0 {
		t.Fatalf("%d bytes still unsettled after the top-up", left)
	}
	earn, _ := pn.coord.Ledger().Earnings(ctx, pn.node.ID())
	if earn.Earned != held {
		t.Fatalf("earned %d, want %d", earn.Earned, held)
	}
}
