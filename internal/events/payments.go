package events

// Payment event types (internal/ledger emits them; docs/payments.md).
const (
	TypeReceiptsSettled Type = "receipts.settled"
	TypeAccountFrozen   Type = "account.frozen"
	TypeAccountUnfrozen Type = "account.unfrozen"
)

// ReceiptsSettled: the ledger applied a node's settlement batch for an
// account: Bytes were debited from the account and credited to the node.
type ReceiptsSettled struct {
	Account  string `json:"account"`
	Node     string `json:"node"`
	Bytes    uint64 `json:"bytes"`    // newly settled by this batch
	Sessions int    `json:"sessions"` // sessions whose settled bytes grew
	// Sites splits Bytes by the site named in each session's voucher
	// ("-" for vouchers without one).
	Sites    map[string]uint64 `json:"sites,omitempty"`
	Balance  int64             `json:"balance"`  // the account's balance after it, bytes
	Revision uint64            `json:"revision"` // the account record's revision
}

// AccountFrozen: an account's balance fell below its freezing threshold;
// nodes refuse its sessions until it is topped up.
type AccountFrozen struct {
	Account   string `json:"account"`
	Balance   int64  `json:"balance"`
	Threshold int64  `json:"threshold"`
	Revision  uint64 `json:"revision"`
}

// AccountUnfrozen: a frozen account is back at or above its threshold.
type AccountUnfrozen struct {
	Account   string `json:"account"`
	Balance   int64  `json:"balance"`
	Threshold int64  `json:"threshold"`
	Revision  uint64 `json:"revision"`
}

// TypeGatewayCharged: a gateway charged an account for bytes it served on
// its HTTPS path (first-visit HTML, the CAR fallback).
const TypeGatewayCharged Type = "gateway.charged"

// GatewayCharged: the ledger applied one of a gateway's metering batches.
type GatewayCharged struct {
	Account  string            `json:"account"`
	Gateway  string            `json:"gateway"`
	Bytes    uint64            `json:"bytes"`    // charged by this batch
	Sites    map[string]uint64 `json:"sites"`    // the same bytes by site
	Balance  int64             `json:"balance"`  // after it
	Revision uint64            `json:"revision"` // the account record's revision
}
