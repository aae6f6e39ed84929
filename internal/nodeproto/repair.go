package nodeproto

// Block repair. A node that finds a block of its store corrupt (it fails
// its hash check on read) drops it and asks the coordinator where to get
// it again; the coordinator answers with the HTTP base URLs of live nodes
// holding roots placed on the asking node, and the node fetches
// /ipfs/<cid>?format=raw from them, verifying the block before storing it.
// A node sends repair only when the welcome lists FeatureRepair.
const (
	MsgRepair        = "repair"         // node → coordinator
	MsgRepairSources = "repair-sources" // coordinator → node, the answer

	// FeatureRepair in Welcome.Features: the coordinator answers repair.
	FeatureRepair = "repair"

	// MaxRepairSources bounds the sources of one answer.
	MaxRepairSources = 8
)

// Repair asks for sources of one block.
type Repair struct {
	ID  uint64 `json:"id"`  // echoed in the answer
	CID string `json:"cid"` // the corrupt block
}

// RepairSources answers a Repair: the HTTP base URLs of other nodes to
// fetch the block from (none when no other holder is live).
type RepairSources struct {
	ID      uint64   `json:"id"`
	CID     string   `json:"cid"`
	Sources []string `json:"sources"`
	// Grant lets the node fetch CID from Sources (GrantHeader, as for
	// Pin.Grant). Empty from a coordinator without a request key.
	Grant string `json:"grant,omitempty"`
}
