package events

// TypeNodeReported: visitors' workers reported failures of a node (a bad
// block, an unreachable node, a timeout, a protocol error). Gateways
// aggregate reports per node and emit at most about one event per node per
// second; every coordinator forwards the events of the nodes connected to
// it, so the node counts what clients saw of it.
const TypeNodeReported Type = "node.reported"

// NodeReported is the payload of node.reported.
type NodeReported struct {
	Node    string         `json:"node"`
	Reasons map[string]int `json:"reasons"` // reason → reports aggregated in this event
	Gateway string         `json:"gateway"`
	// Sites counts the reports of this event that visitors' workers
	// made, by the site they were visiting (the gateway's own failed
	// fetches of the node count in Reasons only).
	Sites map[string]int `json:"sites,omitempty"`
}
