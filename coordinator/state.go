package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// Node states.
const (
	StateLive = "live"
	StateLost = "lost"
)

// NodeState is a node's entry in the nodes KV bucket (key: node id).
type NodeState struct {
	Record      noderecord.Signed   `json:"record"`
	Status      nodeproto.Heartbeat `json:"status"` // last report (Record field unused)
	State       string              `json:"state"`  // StateLive or StateLost
	Coordinator string              `json:"coordinator"`
	Session     string              `json:"session"`
	Addr        string              `json:"addr"`               // remote IP the coordinator saw
	Operator    string              `json:"operator,omitempty"` // whose credential it joined with
	JoinedAt    time.Time           `json:"joinedAt"`
	LastSeen    time.Time           `json:"lastSeen"`
	LostAt      time.Time           `json:"lostAt,omitzero"`
	Reason      string              `json:"reason,omitempty"` // why it was lost
}

// Node returns the node id.
func (s NodeState) Node() string { return s.Record.Record.NodeID }

// Candidate returns s as a routing candidate: its address is the host of
// its WebTransport or HTTP URL when that is an IP literal, else the address
// it connected from.
func (s NodeState) Candidate() Candidate {
	c := Candidate{Node: s.Node(), Region: s.Status.Region, Load: s.Status.Load}
	for _, raw := range []string{s.Record.Record.WebTransport, s.Record.Record.HTTP} {
		if u, err := url.Parse(raw); err == nil {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				c.Addr = a.Unmap()
				return c
			}
		}
	}
	if a, err := netip.ParseAddr(s.Addr); err == nil {
		c.Addr = a.Unmap()
	}
	return c
}

func decodeState(b []byte) (NodeState, error) {
	var s NodeState
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: node state: %w", ErrMalformed, err)
	}
	return s, nil
}

// updateState applies fn to the node's KV entry with compare-and-set. fn
// returns false to leave it unchanged. It returns the state written and
// whether a write happened.
func (c *Coordinator) updateState(ctx context.Context, node string, fn func(cur *NodeState, exists bool) bool) (NodeState, bool, error) {
	var out NodeState
	var wrote bool
	rev, err := events.Update(ctx, c.kv, node, func(old []byte) ([]byte, error) {
		var cur NodeState
		exists := old != nil
		if exists {
			s, err := decodeState(old)
			if err != nil {
				return nil, err
			}
			cur = s
		}
		if !fn(&cur, exists) {
			wrote = false
			return nil, events.ErrNoChange
		}
		out, wrote = cur, true
		return json.Marshal(cur)
	})
	if err != nil {
		return NodeState{}, false, err
	}
	if wrote {
		c.cacheStore(node, out, rev)
	}
	return out, wrote, nil
}

// cachedState returns the node's state as last seen.
func (c *Coordinator) cachedState(node string) (NodeState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.cache[node]
	return cs.state, ok
}
