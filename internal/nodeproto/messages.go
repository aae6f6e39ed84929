package nodeproto

import (
	"cmp"
	"encoding/hex"
	"slices"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// ConnectPath is where nodes open their WebSocket to the coordinator.
const ConnectPath = "/v1/nodes/connect"

// JoinPrefix separates join signatures from anything else the node key
// signs (node records use noderecord.SignaturePrefix).
const JoinPrefix = "verity-node-join/1\n"

// NonceSize is the size of a challenge nonce.
const NonceSize = 32

// Message types.
const (
	MsgChallenge = "challenge" // coordinator → node, first message
	MsgJoin      = "join"      // node → coordinator, the answer
	MsgWelcome   = "welcome"   // coordinator → node, join accepted
	MsgHeartbeat = "heartbeat" // node → coordinator, every heartbeat interval
	MsgPin       = "pin"       // coordinator → node, after welcome: fetch, verify and pin a root
	MsgPinned    = "pinned"    // node → coordinator, the outcome of a pin order
	MsgPlaced    = "placed"    // coordinator → node, after welcome: every root placed on it
	MsgUnpin     = "unpin"     // coordinator → node: a root no longer placed on it
	MsgReported  = "reported"  // coordinator → node: failures clients reported about it
)

// Message is one WebSocket text message: a type and the matching field.
type Message struct {
	Type      string         `json:"type"`
	Challenge *Challenge     `json:"challenge,omitempty"`
	Join      *Join          `json:"join,omitempty"`
	Welcome   *Welcome       `json:"welcome,omitempty"`
	Heartbeat *Heartbeat     `json:"heartbeat,omitempty"`
	Pin       *Pin           `json:"pin,omitempty"`
	Pinned    *Pinned        `json:"pinned,omitempty"`
	Placed    *Placed        `json:"placed,omitempty"`
	Unpin     *Unpin         `json:"unpin,omitempty"`
	Reported  *Reported      `json:"reported,omitempty"`
	Offer     *WebRTCOffer   `json:"offer,omitempty"`         // MsgWebRTCOffer
	Answer    *WebRTCAnswer  `json:"answer,omitempty"`        // MsgWebRTCAnswer
	Payments  *Payments      `json:"payments,omitempty"`      // MsgPayments
	Settle    *Settle        `json:"settle,omitempty"`        // MsgSettle
	Settled   *Settled       `json:"settled,omitempty"`       // MsgSettled
	Repair    *Repair        `json:"repair,omitempty"`        // MsgRepair
	Sources   *RepairSources `json:"repairSources,omitempty"` // MsgRepairSources
	Watch     *Watch         `json:"watch,omitempty"`         // MsgWatch
}

// Reported tells a node how many failures visitors' workers reported about
// it, by reason (bad-block, unreachable, timeout, protocol), since the last
// such message. Informational: the node counts them in its metrics.
type Reported struct {
	Reasons map[string]int `json:"reasons"`
}

// Placed lists every root the placements assign to the node (pending,
// pinned or failed), sent once per session right after welcome. The node
// may drop pins of roots neither listed nor ordered by a pin message of
// the same session (the list is a snapshot: an order for a root placed
// meanwhile can arrive before it or be handled after it) and
// garbage-collect their blocks.
type Placed struct {
	Roots []string `json:"roots"`
}

// Unpin tells a node that Root is no longer placed on it (another node
// took its copy when holdings were rebalanced): the node drops the pin,
// unless a local one, and garbage-collects the blocks no other pin
// reaches. A node that does not know the message keeps the root until its
// next session's Placed list.
type Unpin struct {
	Root string `json:"root"`
}

// Pin orders a node to hold Root: fetch the CAR at CAR (a GET signed with
// SignContentRequest), verify every block, store the blocks and keep them
// pinned. When CAR cannot be had (the gateway that accepted the deploy is
// gone), the node tries Sources in order: other live holders' trustless
// CAR URLs. Whatever the source, every block is verified and the whole DAG
// must be present before the root is pinned. The node answers with Pinned.
type Pin struct {
	Root    string   `json:"root"`              // root CID
	CAR     string   `json:"car"`               // URL of the CAR holding the whole DAG (the accepting gateway)
	Sources []string `json:"sources,omitempty"` // fallbacks: http://HOLDER/ipfs/ROOT?format=car
	Site    string   `json:"site,omitempty"`    // the site it is placed for, informational
	// Partial: CAR holds only the root's own blocks (a bucket root's
	// directories, docs/storage.md); the node keeps the rest of the DAG
	// already (the objects, placed on their own) or fetches each missing
	// sub-DAG as CAR's directory + "<cid>.car". With ?base=<root> added to
	// CAR, the gateway leaves out the blocks of that root (one the node
	// holds), so only the blocks a change made move.
	Partial bool `json:"partial,omitempty"`
	// Base is the root the node may name in ?base= (a bucket's previous
	// root), when it holds it.
	Base string `json:"base,omitempty"`
	// Check: the coordinator does not count the node as a holder yet
	// (its holding is pending: new, or ordered again after a failed
	// attempt or audit). A node that has the root pinned already walks
	// its DAG and fetches it again when a block is missing, instead of
	// answering at once. A node that ignores it answers at once, as
	// before.
	Check bool `json:"check,omitempty"`
	// Grant lets the node fetch Root from Sources when they require
	// payment: send it as GrantHeader with a request signed by
	// SignContentRequest. Empty when there are no sources, or from a
	// coordinator without a request key.
	Grant string `json:"grant,omitempty"`
}

// Pinned answers a Pin: Error is empty when the node holds the whole DAG.
type Pinned struct {
	Root  string `json:"root"`
	Error string `json:"error,omitempty"`
}

// Challenge is what a node signs to prove it holds its key.
type Challenge struct {
	Nonce       []byte    `json:"nonce"`       // NonceSize random bytes, base64 in JSON
	Coordinator string    `json:"coordinator"` // id of the coordinator that issued it
	Expires     time.Time `json:"expires"`     // answers after this are refused
}

// Join answers a Challenge.
type Join struct {
	Node      string            `json:"node"`      // the node id claimed
	Challenge Challenge         `json:"challenge"` // echoed unchanged
	Signature []byte            `json:"signature"` // ed25519 over JoinSigningBytes(Challenge, Node)
	Record    noderecord.Signed `json:"record"`    // the node's current signed record
	Status    *Heartbeat        `json:"status,omitempty"`
	// Operator is the credential of the node's operator ("vop_NAME.SECRET"),
	// issued by the gateway's admin. A join without a valid one is refused
	// with CloseOperatorRefused.
	Operator string `json:"operator,omitempty"`
}

// Close codes of the coordinator that a node acts on (the others are the
// coordinator's, see package coordinator).
const (
	// CloseOperatorRefused: the join carried no valid operator credential,
	// or the operator's credential was revoked. Retrying with the same
	// credential will not help.
	CloseOperatorRefused = 4003
)

// Welcome accepts a join.
type Welcome struct {
	Node        string `json:"node"`
	Session     string `json:"session"`     // id of this connection's session
	HeartbeatMS int64  `json:"heartbeatMs"` // send a heartbeat this often
	// Features the coordinator supports beyond the base protocol
	// (FeatureRepair).
	Features []string `json:"features,omitempty"`
}

// Heartbeat is the node's periodic status report.
type Heartbeat struct {
	Capacity int64   `json:"capacity"`         // bytes of storage offered
	FreeDisk int64   `json:"freeDisk"`         // bytes still free
	Blocks   int64   `json:"blocks"`           // blocks stored
	Stored   int64   `json:"stored,omitempty"` // bytes of blocks stored (0: not reported)
	Load     float64 `json:"load"`             // 0 idle … 1 saturated
	Version  string  `json:"version"`          // software version
	Region   string  `json:"region,omitempty"` // operator-declared region, e.g. "NL" or "eu-west"
	// Record is the node's current signed record when it changed (e.g.
	// after a certificate rotation); omitted otherwise.
	Record *noderecord.Signed `json:"record,omitempty"`
	// Receipts is what the node says it holds and has not settled yet;
	// nil from a node that does not report it (older versions): unknown,
	// not none. A claim for operators to read, never money: the ledger
	// pays only the receipts a settlement carries.
	Receipts *PendingReceipts `json:"receipts,omitempty"`
}

// MaxPendingAccounts bounds PendingReceipts.ByAccount: a node reports its
// largest ones, and the coordinator keeps no more.
const MaxPendingAccounts = 32

// PendingReceipts is a node's receipts held and not settled yet.
type PendingReceipts struct {
	Sessions int    `json:"sessions"` // sessions whose receipts it holds
	Bytes    uint64 `json:"bytes"`    // receipted and not settled
	// ByAccount splits Bytes by paying account (at most
	// MaxPendingAccounts, the largest; the rest only in Bytes).
	ByAccount map[string]uint64 `json:"byAccount,omitempty"`
}

// Bounded returns p with at most MaxPendingAccounts accounts, the
// largest (ties by name), and a nil p as nil.
func (p *PendingReceipts) Bounded() *PendingReceipts {
	if p == nil {
		return nil
	}
	out := *p
	if len(p.ByAccount) <= MaxPendingAccounts {
		return &out
	}
	names := make([]string, 0, len(p.ByAccount))
	for a := range p.ByAccount {
		names = append(names, a)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(p.ByAccount[b], p.ByAccount[a]), cmp.Compare(a, b))
	})
	out.ByAccount = make(map[string]uint64, MaxPendingAccounts)
	for _, a := range names[:MaxPendingAccounts] {
		out.ByAccount[a] = p.ByAccount[a]
	}
	return &out
}

// Available is the storage the node still offers: what its Capacity
// leaves beyond what it Stored, and never more than its FreeDisk.
func (h Heartbeat) Available() int64 {
	a := h.FreeDisk
	if h.Capacity > 0 {
		a = min(a, h.Capacity-h.Stored)
	}
	return max(a, 0)
}

// JoinSigningBytes returns what a node signs to answer ch as node:
//
//	"verity-node-join/1\n" coordinator "\n" hex(nonce) "\n" expires(RFC 3339, UTC, ns) "\n" node
func JoinSigningBytes(ch Challenge, node string) []byte {
	b := make([]byte, 0, len(JoinPrefix)+len(ch.Coordinator)+2*len(ch.Nonce)+len(node)+40)
	b = append(b, JoinPrefix...)
	b = append(b, ch.Coordinator...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, ch.Nonce)
	b = append(b, '\n')
	b = ch.Expires.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\n')
	b = append(b, node...)
	return b
}
