package nodeproto

import "github.com/verity-cdn/verity/internal/payment"

// Payment messages on the node WebSocket (docs/protocol.md §3.1).
const (
	// MsgPayments (coordinator → node): gateway keys, account states and
	// the node count; the first one right after welcome is complete
	// (Full), later ones carry the current keys and the accounts that
	// changed.
	MsgPayments = "payments"
	// MsgSettle (node → coordinator): a settlement batch. Only sent to a
	// coordinator that announced payments with MsgPayments.
	MsgSettle = "settle"
	// MsgSettled (coordinator → node): the answer to MsgSettle.
	MsgSettled = "settled"
	// MsgWatch (node → coordinator): the accounts whose state the node
	// wants pushed (those it serves). The coordinator answers with their
	// current state and pushes their changes; it pushes no other
	// account's. An account the node settles is watched too.
	MsgWatch = "watch"
)

// Watch lists accounts a node serves (MsgWatch).
type Watch struct {
	Accounts []string `json:"accounts"`
}

// Payments is the payment state a coordinator pushes to its nodes.
type Payments struct {
	Full        bool           `json:"full,omitempty"` // Accounts is every account the node watches, not a change
	GatewayKeys [][]byte       `json:"gatewayKeys"`    // ed25519 public keys vouchers may be signed with
	Accounts    []AccountState `json:"accounts,omitempty"`
	Nodes       int            `json:"nodes"` // live nodes, for payment.SettlePolicy
}

// AccountState is what nodes need of an account: its balance and whether
// it is frozen (then its sessions are refused).
type AccountState struct {
	Name    string `json:"name"`
	Balance int64  `json:"balance"` // bytes
	Frozen  bool   `json:"frozen"`
	// Revision of the ledger's account key this state is of: a node keeps
	// the newest it got, from a push or a settlement result, whichever
	// arrives last.
	Revision uint64 `json:"revision,omitempty"`
}

// Settle asks the coordinator to apply a batch; Batch.Node must be the
// node's own key.
type Settle struct {
	ID    uint64 `json:"id"` // echoed in Settled
	Batch Batch  `json:"batch"`
}

// Settled answers Settle. Result holds what was applied; Code is empty on
// success, a payment.Code or one of the SettleCode* values when the batch
// was refused as a whole; Rejected lists refused items (the others were
// applied).
type Settled struct {
	ID       uint64         `json:"id"`
	Result   *SettleResult  `json:"result,omitempty"`
	Code     string         `json:"code,omitempty"`
	Rejected []RejectedItem `json:"rejected,omitempty"`
}

// RejectedItem is one refused batch item.
type RejectedItem struct {
	Index int    `json:"index"`
	Code  string `json:"code"`
}

// Settlement refusal codes beyond payment.Code.
const (
	SettleCodeWrongNode    = "wrong_node"      // Batch.Node is not the connected node
	SettleCodeInvalidBatch = "invalid_batch"   // empty or too large
	SettleCodeUnknown      = "unknown_account" // no such account
	SettleCodeWrongAccount = "wrong_account"   // voucher of another account
	SettleCodeInternal     = "internal"        // retry later
	SettleCodeRateLimited  = "rate_limited"    // too many batches from this node; retry later
	// SettleCodeFailedHolding refuses an item whose voucher is for a root
	// the node lost its holding of (a failed storage audit or pin): it
	// earns nothing for it.
	SettleCodeFailedHolding = "failed_holding"
)

// Batch is a node's settlement request for one account: the latest
// receipt of each session it served for that account, each with the
// session's voucher, in their wire encodings. The ledger applies it
// (internal/ledger's Settle).
type Batch struct {
	Node    payment.NodeKey `json:"node"`
	Account string          `json:"account"`
	Items   []BatchItem     `json:"items"`
}

// BatchItem is one session of a Batch.
type BatchItem struct {
	Voucher []byte `json:"voucher"` // payment.Voucher encoding
	Receipt []byte `json:"receipt"` // payment.Receipt encoding, made out to Batch.Node
}

// SettleResult is what the ledger applied of a Batch.
type SettleResult struct {
	Account  string       `json:"account"`
	Node     string       `json:"node"`
	Applied  uint64       `json:"applied"` // bytes debited and credited by this call
	Items    []ItemResult `json:"items"`   // accepted items, in batch order
	Balance  int64        `json:"balance"`
	Frozen   bool         `json:"frozen"`
	Revision uint64       `json:"revision"`
}

// ItemResult says what became of one accepted item.
type ItemResult struct {
	Index   int                `json:"index"`
	Session payment.SessionKey `json:"session"`
	// Settled is the bytes of this session now settled to the node, in
	// all: the node marks its receipt settled up to here.
	Settled uint64 `json:"settled"`
	// Applied is what this call added to Settled.
	Applied uint64 `json:"applied"`
	// Deferred is what the overdraft bound kept from being settled now;
	// submit the receipt again after the account is topped up.
	Deferred uint64 `json:"deferred,omitempty"`
	// Unpayable is what exceeds the voucher's budget once other nodes'
	// settlements of the same session are counted; it will never be paid.
	Unpayable uint64 `json:"unpayable,omitempty"`
}
