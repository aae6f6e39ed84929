package ledger

import (
	"encoding/json"
	"time"
)

// KV buckets the ledger keeps.
const (
	BucketAccounts = "accounts" // key: account name → accountRecord
	BucketEarnings = "earnings" // key: node id → earningsRecord
)

// accountRecord is an account's whole state, one KV value, so that one
// compare-and-set applies a batch atomically: the balance, and per live
// session the bytes settled to each node, which is what makes settlement
// idempotent.
type accountRecord struct {
	Name        string                    `json:"name"`
	Balance     int64                     `json:"balance"` // bytes
	FreezeBelow int64                     `json:"freezeBelow"`
	Frozen      bool                      `json:"frozen"`
	ToppedUp    uint64                    `json:"toppedUp"` // bytes credited, ever
	Spent       uint64                    `json:"spent"`    // bytes settled, ever
	Created     time.Time                 `json:"created"`
	Sessions    map[string]*sessionRecord `json:"sessions,omitempty"`  // voucher id (hex) →
	Paid        map[string]uint64         `json:"paid,omitempty"`      // node id → bytes settled to it, ever
	Charged     uint64                    `json:"charged,omitempty"`   // bytes gateways charged, ever
	Sites       map[string]*SiteSpend     `json:"sites,omitempty"`     // site → spend, ever
	ChargeSeq   map[string]uint64         `json:"chargeSeq,omitempty"` // gateway → last charge batch applied
}

// SiteSpend is what an account spent on one site, in bytes.
type SiteSpend struct {
	Nodes   uint64 `json:"nodes"`   // settled to nodes (vouchers naming the site)
	Gateway uint64 `json:"gateway"` // charged by gateways
}

// NoSite is the site key under which spend of vouchers naming no site is
// counted.
const NoSite = "-"

func (r *accountRecord) site(name string) *SiteSpend {
	if name == "" {
		name = NoSite
	}
	s := r.Sites[name]
	if s == nil {
		s = &SiteSpend{}
		r.Sites[name] = s
	}
	return s
}

type sessionRecord struct {
	Expires int64             `json:"expires"` // unix seconds, the voucher's
	Budget  uint64            `json:"budget"`
	Total   uint64            `json:"total"` // settled over all nodes
	Nodes   map[string]uint64 `json:"nodes"` // node id → settled bytes
}

// earningsRecord mirrors, per node, what each account has paid it. Each
// field is a cumulative counter copied from the account record, so
// updating it is idempotent and may be retried at any time.
type earningsRecord struct {
	Node   string            `json:"node"`
	Earned uint64            `json:"earned"` // sum of From
	From   map[string]uint64 `json:"from"`   // account → bytes
}

func decodeAccount(b []byte) (*accountRecord, error) {
	var r accountRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Sessions == nil {
		r.Sessions = make(map[string]*sessionRecord)
	}
	if r.Paid == nil {
		r.Paid = make(map[string]uint64)
	}
	if r.Sites == nil {
		r.Sites = make(map[string]*SiteSpend)
	}
	if r.ChargeSeq == nil {
		r.ChargeSeq = make(map[string]uint64)
	}
	return &r, nil
}

// Account is the published state of an account.
type Account struct {
	Name        string    `json:"name"`
	Balance     int64     `json:"balance"` // bytes of verified delivery it can still pay
	FreezeBelow int64     `json:"freezeBelow"`
	Frozen      bool      `json:"frozen"`
	ToppedUp    uint64    `json:"toppedUp"`
	Spent       uint64    `json:"spent"`             // settled to nodes, ever
	Charged     uint64    `json:"charged,omitempty"` // charged by gateways, ever
	Sessions    int       `json:"sessions"`          // sessions with settlement state held
	Created     time.Time `json:"created"`
	Revision    uint64    `json:"revision"`
}

func (r *accountRecord) public(rev uint64) Account {
	return Account{Name: r.Name, Balance: r.Balance, FreezeBelow: r.FreezeBelow, Frozen: r.Frozen,
		ToppedUp: r.ToppedUp, Spent: r.Spent, Charged: r.Charged, Sessions: len(r.Sessions), Created: r.Created, Revision: rev}
}

// Earnings is what the ledger has credited a node.
type Earnings struct {
	Node   string            `json:"node"`
	Earned uint64            `json:"earned"` // bytes
	From   map[string]uint64 `json:"from"`   // per account
}
