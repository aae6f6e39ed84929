package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/payment"
)

func (tg *testGateway) sessionWithKey(t *testing.T, site, key string) api.Session {
	t.Helper()
	resp, body := tg.get(t, tg.SiteURL(site)+SessionPath[1:]+"?key="+key)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	var s api.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A session request naming a session key gets a voucher for it, signed by
// the gateway key that the coordinator (and so nodes and the ledger)
// learned from shared state; the key is kept in the data directory.
func TestSessionVoucher(t *testing.T) {
	bus := openBus(t, "gw-test")
	dir := t.TempDir()
	tg := startCoordGateway(t, Config{
		Sites:    NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:      bus,
		DataDir:  dir,
		Payments: PaymentsConfig{Budget: 5 << 20, VoucherTTL: 10 * time.Minute},
	}, provenCoordinator())
	chosen := joinSettlingNode(t, tg, 46)
	signer, err := payment.NewSigner(payment.SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// No voucher for an account that does not exist: no settlement of it
	// would ever be paid.
	if s := tg.sessionWithKey(t, "demo", signer.SessionKey().String()); s.Voucher != "" {
		t.Fatalf("voucher for an unknown account: %+v", s)
	}
	l := tg.Coordinator().Ledger()
	if _, err := l.CreateAccount(t.Context(), "default", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(t.Context(), "default", 1<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the account", func() bool {
		a, ok := tg.Coordinator().Account("default")
		return ok && !a.Frozen
	})
	s := tg.sessionWithKey(t, "demo", signer.SessionKey().String())
	if s.Account != "default" || s.Voucher == "" || s.PaymentError != "" {
		t.Fatalf("session payment fields: %+v", s)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Voucher)
	if err != nil {
		t.Fatal(err)
	}
	v, err := payment.ParseVoucher(raw)
	if err != nil {
		t.Fatal(err)
	}
	keys := tg.Coordinator().GatewayKeys()
	waitFor(t, "the gateway key in shared state", func() bool {
		_, ok := keys.GatewayKey(payment.KeyIDOf(tg.PaymentKey()))
		return ok
	})
	if err := v.Verify(keys, time.Now()); err != nil {
		t.Fatalf("voucher does not verify with the published keys: %v", err)
	}
	// It names the session's node, caps it (NodeCap, here the budget) and
	// names the content root.
	if len(s.Nodes) != 1 || s.Nodes[0].ID != chosen.key.String() || len(v.Nodes) != 1 || !v.Names(chosen.key) ||
		v.NodeCap != 5<<20 || v.Root != s.Root || s.Root == "" {
		t.Fatalf("voucher %+v for session nodes %+v", v, s.Nodes)
	}
	if v.Session != signer.SessionKey() || v.Budget != 5<<20 || v.Account != "default" || v.Site != "demo" ||
		v.Expires.Sub(time.Now()) > 10*time.Minute || v.Expires.Unix() != s.VoucherExpires {
		t.Fatalf("voucher %+v", v)
	}
	if err := signer.SetVoucher(v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, paymentKeyFile)); err != nil {
		t.Fatalf("payment key not persisted: %v", err)
	}
	// Without a key: no payment fields. A bad key: 400.
	if s := tg.session(t, "demo"); s.Voucher != "" || s.Account != "" {
		t.Fatalf("voucher without a key: %+v", s)
	}
	if resp, _ := tg.get(t, tg.SiteURL("demo")+SessionPath[1:]+"?key=snotakey"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad key: %d", resp.StatusCode)
	}
}

// The gateway issues no voucher for a frozen account: the worker then uses
// the gateway path.
func TestSessionFrozenAccountNoVoucher(t *testing.T) {
	bus := openBus(t, "gw-test")
	tg := startCoordGateway(t, Config{
		Sites: NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:   bus,
	}, provenCoordinator())
	// A new account starts frozen until topped up.
	if _, err := tg.Coordinator().Ledger().CreateAccount(t.Context(), "default", 0); err != nil {
		t.Fatal(err)
	}
	signer, _ := payment.NewSigner(payment.SignerConfig{})
	waitFor(t, "the frozen account", func() bool {
		a, ok := tg.Coordinator().Account("default")
		return ok && a.Frozen
	})
	s := tg.sessionWithKey(t, "demo", signer.SessionKey().String())
	if s.Voucher != "" || s.PaymentError != "account_frozen" {
		t.Fatalf("frozen account session: %+v", s)
	}
}

// A client address gets at most VoucherBurst vouchers at once (then
// VoucherRate per second): each is a promise of the site's money to
// whoever asks. Beyond it the session is answered without a voucher.
func TestVouchersRateLimited(t *testing.T) {
	bus := openBus(t, "gw-test")
	tg := startCoordGateway(t, Config{
		Sites:    NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Bus:      bus,
		Payments: PaymentsConfig{VoucherRate: 1e-6, VoucherBurst: 2},
	}, provenCoordinator())
	joinSettlingNode(t, tg, 47)
	l := tg.Coordinator().Ledger()
	if _, err := l.CreateAccount(t.Context(), "default", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(t.Context(), "default", 1<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the account", func() bool {
		a, ok := tg.Coordinator().Account("default")
		return ok && !a.Frozen
	})
	for i := range 4 {
		signer, err := payment.NewSigner(payment.SignerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		s := tg.sessionWithKey(t, "demo", signer.SessionKey().String())
		if got, want := s.Voucher != "", i < 2; got != want {
			t.Fatalf("session %d: voucher %v, want %v: %+v", i, got, want, s)
		}
		if s.Root == "" || s.PaymentError != "" {
			t.Fatalf("session %d: %+v", i, s)
		}
	}
}

// provenCoordinator is testCoordinator taking every node's URLs as
// proven, for nodes joined with hand-made records.
func provenCoordinator() coordinator.Config {
	cc := testCoordinator()
	cc.URLProver = acceptURLs{}
	return cc
}

// A session that lists no node gets no voucher: there is no node it could
// pay, and a voucher naming none would be a promise to whoever asks.
func TestSessionNoNodeNoVoucher(t *testing.T) {
	tg := startDrainGateway(t, Config{})
	signer, err := payment.NewSigner(payment.SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := tg.sessionWithKey(t, "demo", signer.SessionKey().String())
	if len(s.Nodes) != 0 || s.Voucher != "" || s.Account != "default" || s.PaymentError != "" {
		t.Fatalf("session without nodes: %+v", s)
	}
}

// Voucher settings a worker cannot use are refused at start, with what is
// wrong, rather than issued: a per-node cap under one credit window stops
// every paid stream at its first receipt, and a lifetime within the
// worker's renewal horizon makes every session load ask for a new voucher.
func TestPaymentsConfigFloors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   PaymentsConfig
		want string
	}{
		{"node cap", PaymentsConfig{NodeCap: 100 << 10}, "NodeCap"},
		{"budget", PaymentsConfig{Budget: 512 << 10}, "Budget"},
		{"min budget", PaymentsConfig{MinBudget: 64 << 10}, "MinBudget"},
		{"ttl", PaymentsConfig{VoucherTTL: 2 * time.Minute}, "VoucherTTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Sites: NewStaticSites(nil), Nodes: StaticNodes{}, Payments: tc.pc, Listen: "127.0.0.1:0"})
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New with %+v: %v, want a config error naming %s", tc.pc, err, tc.want)
			}
		})
	}
	// Disabled payments check nothing; the floors themselves are accepted.
	for _, pc := range []PaymentsConfig{
		{Disabled: true, NodeCap: 1},
		{NodeCap: MinVoucherBytes, Budget: MinVoucherBytes, MinBudget: MinVoucherBytes, VoucherTTL: MinVoucherTTL},
	} {
		g, err := New(Config{Sites: NewStaticSites(nil), Nodes: StaticNodes{}, Payments: pc, Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatalf("New with %+v: %v", pc, err)
		}
		g.Close()
	}
}
