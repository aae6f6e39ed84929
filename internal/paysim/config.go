package paysim

import (
	"io"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// Config describes a simulated network. Every field has a working zero
// value (the defaults below).
type Config struct {
	Nodes           int           // default 1,000
	Accounts        int           // default 2,000
	AccountsPerNode int           // accounts each node serves; default 20
	NodeGbps        float64       // delivery rate of a node at full load; default 10
	Utilization     float64       // mean fraction of NodeGbps used; default 1
	Duration        time.Duration // simulated time; default 5 min
	Tick            time.Duration // simulation step; default 1 s
	PublishEvery    time.Duration // how stale the balances nodes see are; default 5 s
	SessionBytes    uint64        // mean session size, for batch sizes; default 64 MiB
	FreezeFraction  float64       // threshold = this × initial balance; default 0.01
	Seed            uint64        // default 1

	// NodeCap is the voucher's per-node cap: a node is paid at most this
	// per session, so what it delivers to one account is settled as at
	// least uncommitted / NodeCap sessions. Default 16 MiB (the gateway's
	// default, gateway.DefaultVoucherNodeCap).
	NodeCap uint64
	// Attackers are hostile clients, each with a node of its own that the
	// gateway chooses for its sessions: each gets vouchers at the
	// gateway's per-address rate (VoucherBurst at once, then VoucherRate
	// per second) for one of the most popular accounts while it is not
	// frozen, and has its node settle NodeCap under each without serving
	// anything. Default 10; negative: none.
	Attackers int
	// VoucherBurst and VoucherRate are the gateway's per-address voucher
	// limit. Defaults 30 and 0.1/s.
	VoucherBurst int
	VoucherRate  float64

	// Sessions is how many visitor sessions run at once over the network,
	// spread over the accounts by their traffic: each holds a voucher,
	// and a node's settlement of an account carries one item per session
	// it served since its last. Default 1,000,000.
	Sessions int
	// VoucherBudget is a voucher's budget, what the gateway holds on the
	// account when it issues one (ledger.Hold). Default 64 MiB (the
	// gateway's default).
	VoucherBudget uint64

	// Policies to compare; default DefaultPolicies().
	Policies []Policy

	// VerifyPerCore, when > 0, is the measured receipt verifications per
	// second per core, used to turn rates into cores (Calibrate measures it).
	VerifyPerCore float64

	// Out, when set, receives the result table.
	Out io.Writer
}

// Policy is a named settlement policy.
type Policy struct {
	Name string
	// PerReceipt settles every receipt on its own (no aggregation): the
	// baseline a per-payment ledger would face.
	PerReceipt bool
	Settle     payment.SettlePolicy
	// IgnoreNodes makes the node act as if it were the account's only
	// node (a policy that forgets the others' exposure).
	IgnoreNodes bool
	// NoHolds: the gateway issues vouchers without holding their budget
	// on the account (as before holds), only stopping when it sees the
	// account frozen.
	NoHolds bool
}

// DefaultPolicies are the policies compared by default.
func DefaultPolicies() []Policy {
	return []Policy{
		{Name: "per receipt", PerReceipt: true},
		{Name: "every 60 s", Settle: payment.SettlePolicy{Fraction: 1e12, MaxInterval: time.Minute}},
		{Name: "25% bal/n or 5 min", Settle: payment.DefaultSettlePolicy},
		{Name: "5% bal/n or 5 min", Settle: payment.SettlePolicy{Fraction: 0.05, MaxInterval: 5 * time.Minute}},
		{Name: "25% bal (ignores n)", Settle: payment.DefaultSettlePolicy, IgnoreNodes: true},
		{Name: "25% bal/n, no holds", Settle: payment.DefaultSettlePolicy, NoHolds: true},
	}
}

func (c Config) normalize() Config {
	if c.Nodes <= 0 {
		c.Nodes = 1000
	}
	if c.Accounts <= 0 {
		c.Accounts = 2000
	}
	if c.AccountsPerNode <= 0 {
		c.AccountsPerNode = 20
	}
	if c.AccountsPerNode > c.Accounts {
		c.AccountsPerNode = c.Accounts
	}
	if c.NodeGbps <= 0 {
		c.NodeGbps = 10
	}
	if c.Utilization <= 0 {
		c.Utilization = 1
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.PublishEvery <= 0 {
		c.PublishEvery = 5 * time.Second
	}
	if c.SessionBytes == 0 {
		c.SessionBytes = 64 << 20
	}
	if c.FreezeFraction <= 0 {
		c.FreezeFraction = 0.01
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.NodeCap == 0 {
		c.NodeCap = 16 << 20
	}
	switch {
	case c.Attackers == 0:
		c.Attackers = 10
	case c.Attackers < 0:
		c.Attackers = 0
	}
	if c.VoucherBurst <= 0 {
		c.VoucherBurst = 30
	}
	if c.VoucherRate <= 0 {
		c.VoucherRate = 0.1
	}
	if c.Sessions <= 0 {
		c.Sessions = 1_000_000
	}
	if c.VoucherBudget == 0 {
		c.VoucherBudget = 64 << 20
	}
	if len(c.Policies) == 0 {
		c.Policies = DefaultPolicies()
	}
	return c
}
