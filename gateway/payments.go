package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/keyfile"
	"github.com/verity-cdn/verity/internal/payment"
)

// paymentKeyFile holds the gateway's voucher signing key under DataDir.
const paymentKeyFile = "payment.key"

// Voucher defaults (PaymentsConfig).
const (
	DefaultVoucherBudget    = 64 << 20
	DefaultVoucherNodeCap   = 16 << 20
	DefaultVoucherMinBudget = 4 << 20

	// MinVoucherBytes is the least Budget, MinBudget and NodeCap the
	// gateway accepts: one credit window of a node (1 MiB by default). A
	// worker stops a paid stream at the last whole 256 KiB block its
	// voucher can pay, so a smaller cap would end every stream at its
	// first receipt.
	MinVoucherBytes = 1 << 20
	// MinVoucherTTL is the shortest VoucherTTL the gateway accepts. A
	// worker asks for its next voucher 5 minutes before the current one
	// expires; a shorter lifetime would make every session load ask for
	// one.
	MinVoucherTTL = 10 * time.Minute
)

// PaymentsConfig configures the vouchers the gateway issues to workers
// (docs/payments.md). The zero value works.
type PaymentsConfig struct {
	// Disabled: session responses carry no voucher.
	Disabled bool
	// Key signs vouchers. Default: the key in DataDir/payment.key,
	// generated there on first start; without DataDir a key generated at
	// start. With Bus its public key is published in the gateways bucket
	// (coordinator.BucketGateways), where coordinators and nodes learn it.
	Key ed25519.PrivateKey
	// Budget of a voucher, in bytes over all nodes: what one visit may
	// fetch from nodes before the worker asks for another voucher.
	// Default 64 MiB. A voucher's budget is at most NodeCap times the
	// nodes it names, and is sized to the visit: for a site whose size is
	// known (Site.Size) twice that size, at least MinBudget.
	Budget uint64
	// MinBudget is the least budget of a site of known size. Default
	// 4 MiB; at most Budget.
	MinBudget uint64
	// NodeCap is the most any one node may be paid under a voucher. It
	// bounds what a client's own node, when the gateway chose it, can
	// take per voucher without serving (docs/security.md, "Payments").
	// Default 16 MiB; at most Budget.
	NodeCap uint64
	// VoucherTTL is a voucher's lifetime; the worker asks for a new one
	// when it expires. Default 1 h.
	VoucherTTL time.Duration
	// DefaultAccount pays for sites that name no account. Default
	// "default".
	DefaultAccount string
	// VoucherRate and VoucherBurst bound the vouchers issued per client
	// address (a token bucket): vouchers per second and the burst allowed.
	// Each voucher is a promise of Budget bytes from the site's account,
	// signed away to whoever asks, so an address asking for more gets the
	// session without one (the worker fetches unpaid). Defaults 0.1/s (one
	// every 10 s) and 30; a worker needs one per VoucherTTL.
	VoucherRate  float64
	VoucherBurst int
}

// budgetFor returns the budget and the per-node cap of a voucher for
// site: sized to a visit when the site's size is known (twice its size,
// so that a visit that fetches a block again still fits, at least
// MinBudget), else Budget; the cap is at most the budget.
func (c PaymentsConfig) budgetFor(site Site) (budget, nodeCap uint64) {
	budget = c.Budget
	if site.Size > 0 {
		budget = min(budget, max(c.MinBudget, 2*uint64(site.Size)))
	}
	return budget, min(c.NodeCap, budget)
}

// check refuses settings no worker could use (MinVoucherBytes,
// MinVoucherTTL); zero means the default.
func (c PaymentsConfig) check() error {
	if c.Disabled {
		return nil
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{{"Budget", c.Budget}, {"MinBudget", c.MinBudget}, {"NodeCap", c.NodeCap}} {
		if f.v != 0 && f.v < MinVoucherBytes {
			return configError(fmt.Sprintf("Payments.%s %d is under %d bytes (one node's credit window): a worker could not keep a paid stream open", f.name, f.v, MinVoucherBytes))
		}
	}
	if c.VoucherTTL > 0 && c.VoucherTTL < MinVoucherTTL {
		return configError(fmt.Sprintf("Payments.VoucherTTL %s is under %s: a worker asks for its next voucher 5 minutes before the current one expires", c.VoucherTTL, MinVoucherTTL))
	}
	return nil
}

func (c PaymentsConfig) normalize() PaymentsConfig {
	if c.Budget == 0 {
		c.Budget = DefaultVoucherBudget
	}
	if c.NodeCap == 0 {
		c.NodeCap = DefaultVoucherNodeCap
	}
	c.NodeCap = min(c.NodeCap, c.Budget)
	if c.MinBudget == 0 {
		c.MinBudget = DefaultVoucherMinBudget
	}
	c.MinBudget = min(c.MinBudget, c.Budget)
	if c.VoucherTTL <= 0 {
		c.VoucherTTL = time.Hour
	}
	if c.DefaultAccount == "" {
		c.DefaultAccount = "default"
	}
	if c.VoucherRate <= 0 {
		c.VoucherRate = 0.1
	}
	if c.VoucherBurst <= 0 {
		c.VoucherBurst = 30
	}
	return c
}

// startPayments loads the voucher key and publishes it.
func (g *Gateway) startPayments(ctx context.Context) error {
	key, err := g.cfg.Payments.SigningKey(g.cfg.DataDir)
	if err != nil || key == nil {
		return err
	}
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("gateway: Payments.Key must be an ed25519 private key")
	}
	g.payKey = key
	if g.cfg.Bus != nil {
		if err := coordinator.PublishGatewayKey(ctx, g.cfg.Bus, g.cfg.Name, key.Public().(ed25519.PublicKey)); err != nil {
			return fmt.Errorf("gateway: publish payment key: %w", err)
		}
	}
	return nil
}

// PaymentKey returns the public key vouchers are signed with (nil when
// payments are disabled).
func (g *Gateway) PaymentKey() ed25519.PublicKey {
	if g.payKey == nil {
		return nil
	}
	return g.payKey.Public().(ed25519.PublicKey)
}

// SigningKey returns the key vouchers are signed with for a gateway whose
// DataDir is dataDir: nil when payments are disabled, else Key, else the
// key in dataDir/payment.key, generated there on first use (without
// dataDir a key generated now). The coordinator and control plane
// running with the gateway sign their requests to nodes with it
// (coordinator.Config.RequestKey): pass it to them and as Key.
func (c PaymentsConfig) SigningKey(dataDir string) (ed25519.PrivateKey, error) {
	if c.Disabled {
		return nil, nil
	}
	if c.Key != nil {
		return c.Key, nil
	}
	return loadOrCreatePaymentKey(dataDir)
}

func loadOrCreatePaymentKey(dir string) (ed25519.PrivateKey, error) {
	if dir == "" {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	priv, err := keyfile.LoadOrCreate(filepath.Join(dir, paymentKeyFile))
	if err != nil {
		return nil, fmt.Errorf("gateway: payment key: %w", err)
	}
	return priv, nil
}

// voucherFor fills the payment fields of a session response for the
// session key the worker sent (query "key"), naming the nodes the session
// lists. It leaves them empty when payments are off, no key was sent or
// the session lists no node, issues no voucher for an account
// Config.Accounts does not know nor beyond the client address's rate, and
// sets PaymentError instead of a voucher when the site's account is
// frozen: the worker then uses the gateway path. With Config.Holds each
// voucher holds its budget on the account; one the account's available
// funds do not cover is not issued (the worker fetches through the
// gateway, which meters it).
func (g *Gateway) voucherFor(ctx context.Context, s *api.Session, site Site, key string, client netip.Addr, nodes []nodeInfo) error {
	if g.payKey == nil || key == "" {
		return nil
	}
	sk, err := payment.ParseSessionKey(key)
	if err != nil {
		return err
	}
	pc := g.cfg.Payments
	account := site.Account
	if account == "" {
		account = pc.DefaultAccount
	}
	s.Account = account
	if g.cfg.Accounts != nil {
		a, ok := g.cfg.Accounts.Account(account)
		if !ok {
			// No such account: the ledger would refuse every settlement
			// of the voucher, so nodes would serve under it for nothing.
			// The worker fetches unpaid.
			return nil
		}
		if a.Frozen {
			s.PaymentError = payment.Code(payment.ErrAccountFrozen)
			return nil
		}
	}
	// The voucher pays only the nodes the gateway chose: a node the
	// client brings along is paid nothing under it.
	tags := make([]payment.NodeTag, 0, min(len(nodes), payment.MaxVoucherNodes))
	for _, n := range nodes {
		if len(tags) == payment.MaxVoucherNodes {
			break
		}
		if k, err := payment.ParseNodeID(n.id); err == nil {
			tags = append(tags, payment.TagOf(k))
		}
	}
	if len(tags) == 0 {
		return nil // no node to pay
	}
	if !g.vouchers.allow(client, g.cfg.Now()) {
		g.metrics.vouchersLimited.Inc()
		return nil
	}
	budget, nodeCap := pc.budgetFor(site)
	v := payment.Voucher{
		Account: account, Session: sk, Nodes: tags, NodeCap: nodeCap,
		Budget:  min(budget, nodeCap*uint64(len(tags))),
		Expires: g.cfg.Now().Add(pc.VoucherTTL).Truncate(time.Second),
	}
	if len(site.Root) <= payment.MaxRootLen && payment.ValidRoot(site.Root) {
		v.Root = site.Root
	}
	if ValidSiteName(site.Name) {
		// Settlements attribute the session's spend to the site.
		v.Site = site.Name
	}
	if _, err := rand.Read(v.Nonce[:]); err != nil {
		return err
	}
	if err := v.Sign(g.payKey); err != nil {
		return err
	}
	enc, err := v.MarshalBinary()
	if err != nil {
		return err
	}
	if g.cfg.Holds != nil {
		err := g.cfg.Holds.Hold(ctx, account, v.ID(), v.Budget, v.Expires)
		switch {
		case errors.Is(err, payment.ErrAccountFrozen):
			s.PaymentError = payment.Code(payment.ErrAccountFrozen)
			return nil
		case err != nil:
			// Not covered (ledger.ErrInsufficientFunds) or the ledger
			// unreachable: no promise the account may not keep.
			g.metrics.vouchersUnheld.Inc()
			g.log.Debug("voucher not held", "account", account, "err", err)
			return nil
		}
	}
	s.Voucher = base64.StdEncoding.EncodeToString(enc)
	s.VoucherExpires = v.Expires.Unix()
	return nil
}
