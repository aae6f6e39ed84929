package ledger

import (
	"encoding/json"
	"time"
)

// KV buckets the ledger keeps.
const (
	// BucketLedger holds the accounts' totals (key AccountKeyPrefix +
	// name → accountRecord) and one key per live session (key
	// SessionKeyPrefix + hex voucher id → sessionRecord, with a per-key
	// TTL of voucher expiry + SettleGrace + PruneMargin). Its stream
	// (KV_ledger) allows atomic batch publish, so a settlement writes its
	// sessions and the account in one multi-key compare-and-set.
	BucketLedger   = "ledger"
	BucketEarnings = "earnings" // key: node id → earningsRecord

	AccountKeyPrefix = "acct." // + account name
	SessionKeyPrefix = "sess." // + hex voucher id
)

// AccountKey is the key of an account's totals in BucketLedger.
func AccountKey(name string) string { return AccountKeyPrefix + name }

func sessionKey(vid string) string { return SessionKeyPrefix + vid }

// accountRecord is an account's totals, one KV value: balance, held
// funds, freezing state, spend. The sessions a settlement touches are
// separate keys (sessionRecord); Sessions holds those read for one
// settlement, in memory only.
type accountRecord struct {
	Name        string                    `json:"name"`
	Balance     int64                     `json:"balance"` // bytes
	FreezeBelow int64                     `json:"freezeBelow"`
	Frozen      bool                      `json:"frozen"`
	ToppedUp    uint64                    `json:"toppedUp"` // bytes credited, ever
	Spent       uint64                    `json:"spent"`    // bytes settled, ever
	Created     time.Time                 `json:"created"`
	Sessions    map[string]*sessionRecord `json:"-"`                   // voucher id (hex) → (those a settlement read)
	Held        map[int64]*heldBucket     `json:"held,omitempty"`      // voucher expiry, rounded up to the minute → held by vouchers expiring then
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

// heldBucket is what the unexpired vouchers of one expiry minute hold.
type heldBucket struct {
	Bytes    uint64 `json:"bytes"`
	Sessions int    `json:"sessions"`
}

// heldAt is what the account holds at now: the buckets of vouchers not
// expired yet. A voucher's hold lapses at its expiry without a write.
func (r *accountRecord) heldAt(now int64) (bytes uint64, sessions int) {
	for exp, b := range r.Held {
		if exp > now {
			bytes += b.Bytes
			sessions += b.Sessions
		}
	}
	return bytes, sessions
}

// pruneHeld drops the buckets of expired vouchers.
func (r *accountRecord) pruneHeld(now int64) {
	for exp := range r.Held {
		if exp <= now {
			delete(r.Held, exp)
		}
	}
}

// holdBucket is the Held key of a voucher expiring at expires (unix s).
func holdBucket(expires int64) int64 { return (expires + 59) / 60 * 60 }

type sessionRecord struct {
	Account string            `json:"account,omitempty"`
	Expires int64             `json:"expires"` // unix seconds, the voucher's
	Budget  uint64            `json:"budget"`
	Held    uint64            `json:"held,omitempty"` // still held on the account (Ledger.Hold), until expiry
	Total   uint64            `json:"total"`          // settled over all nodes
	Nodes   map[string]uint64 `json:"nodes"`          // node id → settled bytes
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
	if r.Held == nil {
		r.Held = make(map[int64]*heldBucket)
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
	Sessions    int       `json:"sessions"`          // unexpired vouchers holding funds
	Held        uint64    `json:"held,omitempty"`    // bytes held by them (Ledger.Hold); available = Balance − Held
	Created     time.Time `json:"created"`
	Revision    uint64    `json:"revision"`
}

func (r *accountRecord) public(rev uint64, now time.Time) Account {
	held, n := r.heldAt(now.Unix())
	return Account{Name: r.Name, Balance: r.Balance, FreezeBelow: r.FreezeBelow, Frozen: r.Frozen,
		ToppedUp: r.ToppedUp, Spent: r.Spent, Charged: r.Charged, Sessions: n, Held: held, Created: r.Created, Revision: rev}
}

// Earnings is what the ledger has credited a node.
type Earnings struct {
	Node   string            `json:"node"`
	Earned uint64            `json:"earned"` // bytes
	From   map[string]uint64 `json:"from"`   // per account
}
