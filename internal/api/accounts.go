package api

import "time"

// Account is an account's published state: GET /v1/accounts/{name}, and
// the answer of its creation and top-ups. Amounts are bytes of verified
// delivery.
type Account struct {
	Name        string    `json:"name"`
	Balance     int64     `json:"balance"` // bytes of verified delivery it can still pay
	FreezeBelow int64     `json:"freezeBelow"`
	Frozen      bool      `json:"frozen"`
	ToppedUp    uint64    `json:"toppedUp"`
	Spent       uint64    `json:"spent"`             // settled to nodes, ever
	Charged     uint64    `json:"charged,omitempty"` // charged by gateways, ever
	Sessions    int       `json:"sessions"`          // unexpired vouchers holding funds
	Held        uint64    `json:"held,omitempty"`    // bytes they hold; available = Balance − Held
	Created     time.Time `json:"created"`
	Revision    uint64    `json:"revision"`
}

// AccountList is the answer of GET /v1/accounts.
type AccountList struct {
	Accounts []Account `json:"accounts"`
}

// CreateAccount is the body of POST /v1/accounts. FreezeBelow 0 is the
// ledger's default threshold.
type CreateAccount struct {
	Name        string `json:"name"`
	FreezeBelow int64  `json:"freezeBelow"`
}

// TopUp is the body of POST /v1/accounts/{name}/topup (the development
// faucet).
type TopUp struct {
	Bytes uint64 `json:"bytes"`
}

// Statement entry types.
const (
	EntryCreate = "create" // the account was created
	EntryTopUp  = "topup"  // bytes credited (the faucet, or a payment)
	EntrySettle = "settle" // a node's settlement batch debited it
	EntryCharge = "charge" // a gateway's metering batch debited it
)

// Statement is the answer of GET /v1/accounts/{name}/statement, oldest
// entry first.
type Statement struct {
	Account string           `json:"account"`
	Entries []StatementEntry `json:"entries"`
}

// StatementEntry is one line of an account's statement.
type StatementEntry struct {
	Time     time.Time         `json:"time"`
	Type     string            `json:"type"`              // Entry*
	Bytes    uint64            `json:"bytes"`             // credited (create, topup) or debited
	Node     string            `json:"node,omitempty"`    // settle: the node paid
	Gateway  string            `json:"gateway,omitempty"` // charge: the gateway that served
	Sites    map[string]uint64 `json:"sites,omitempty"`   // settle, charge: Bytes by site
	Balance  int64             `json:"balance"`           // after the change
	Revision uint64            `json:"revision"`          // the account record's revision after it
	Account  string            `json:"account"`
}

// Dashboard is the answer of GET /v1/accounts/{name}/dashboard: an
// account's spend at a glance.
type Dashboard struct {
	Account Account `json:"account"`
	// Spend is what the account paid, ever, in bytes.
	Spend Spend `json:"spend"`
	// Sites splits Spend by site ("-": vouchers naming no site).
	Sites map[string]SiteSpend `json:"sites"`
	// Nodes: bytes settled to each node, by node id.
	Nodes map[string]uint64 `json:"nodes"`
	// TopUps are the most recent top-ups, oldest first.
	TopUps []StatementEntry `json:"topUps"`
}

// Spend totals an account's payments.
type Spend struct {
	Total   uint64 `json:"total"`   // Nodes + Gateway
	Nodes   uint64 `json:"nodes"`   // settled to nodes
	Gateway uint64 `json:"gateway"` // charged by gateways
}

// SiteSpend is what an account paid for one site.
type SiteSpend struct {
	Nodes   uint64 `json:"nodes"`   // settled to nodes (vouchers naming the site)
	Gateway uint64 `json:"gateway"` // charged by gateways
}

// Earnings is the answer of GET /v1/nodes/{id}/earnings: what the ledger
// has credited a node.
type Earnings struct {
	Node   string            `json:"node"`
	Earned uint64            `json:"earned"` // bytes
	From   map[string]uint64 `json:"from"`   // per account
}

// Series is the answer of the history endpoints (GET
// /v1/accounts/{name}/history, /v1/nodes/{id}/history,
// /v1/events/history): values bucketed by time, in columns, from the
// ledger's statement and the event stream kept on the bus. Times[i] is
// the start of bucket i, Step seconds long; Values[name][i] is that
// series' value for it.
type Series struct {
	Since  time.Time          `json:"since"`
	Step   int64              `json:"step"` // seconds
	Times  []time.Time        `json:"times"`
	Values map[string][]int64 `json:"values"`
}
