package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Type is an event type; it is also the subject suffix after SubjectPrefix.
type Type string

// Event types. Each has a payload struct of the same name.
const (
	TypeSiteDeployed      Type = "site.deployed"
	TypeContentReplicated Type = "content.replicated"
	TypeContentCollected  Type = "content.collected"
	TypeSitePublished     Type = "site.published"
	TypeSiteRolledBack    Type = "site.rolled_back"
	TypeDeployFailed      Type = "site.deploy_failed"
	TypeNodeJoined        Type = "node.joined"
	TypeNodeLost          Type = "node.lost"
	TypeNodeAuditFailed   Type = "node.audit_failed"
	TypeCachePurged       Type = "cache.purged"
	TypeDomainAttached    Type = "site.domain_attached"
	TypeDomainVerified    Type = "site.domain_verified"
	TypeDomainRemoved     Type = "site.domain_removed"
)

// Stream and subject names.
const (
	StreamName    = "VERITY_EVENTS"
	SubjectPrefix = "verity.events."
	SubjectAll    = SubjectPrefix + ">"
)

// MaxEventBytes bounds an encoded event envelope.
const MaxEventBytes = 64 << 10

// Subject returns the subject events of type t are published on.
func (t Type) Subject() string { return SubjectPrefix + string(t) }

// Valid reports whether t is a usable type: dot-separated tokens of
// [a-z0-9_-], none empty.
func (t Type) Valid() bool {
	if t == "" || len(t) > 128 {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return false
			}
			tokenLen = 0
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			tokenLen++
		default:
			return false
		}
	}
	return tokenLen > 0
}

// Event is the envelope every event is published in.
type Event struct {
	ID     string          `json:"id"`     // unique; the deduplication key
	Type   Type            `json:"type"`   // e.g. "site.published"
	Time   time.Time       `json:"time"`   // when the action happened, UTC
	Source string          `json:"source"` // who emitted it: gateway/coordinator name
	Data   json.RawMessage `json:"data"`   // the type's payload, JSON
}

// New returns an event of type t with a random id, the current time and
// data encoded as its payload.
func New(t Type, source string, data any) (Event, error) {
	return NewWithID(NewID(), t, source, data)
}

// NewWithID is New with a caller-chosen id, for events that several
// processes may emit for the same cause: equal ids are stored once.
func NewWithID(id string, t Type, source string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, &EventError{Field: "data", Err: fmt.Errorf("%w: %w", ErrInvalidEvent, err)}
	}
	ev := Event{ID: id, Type: t, Time: time.Now().UTC(), Source: source, Data: raw}
	return ev, ev.check()
}

// NewID returns a random event id (32 hex digits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Decode unmarshals the event's payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return &EventError{Field: "data", Err: fmt.Errorf("%w: %w", ErrInvalidEvent, err)}
	}
	return nil
}

func (e Event) check() error {
	if e.ID == "" || len(e.ID) > 256 {
		return &EventError{Field: "id", Err: ErrInvalidEvent}
	}
	if !e.Type.Valid() {
		return &EventError{Field: "type", Err: ErrInvalidEvent}
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return &EventError{Field: "data", Err: ErrInvalidEvent}
	}
	return nil
}

// ParseEvent decodes an envelope (at most MaxEventBytes) and checks it.
func ParseEvent(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, &EventError{Field: "envelope", Err: ErrInvalidEvent}
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, &EventError{Field: "envelope", Err: fmt.Errorf("%w: %w", ErrInvalidEvent, err)}
	}
	return e, e.check()
}

// SiteDeployed: a site version was uploaded and fully verified; placement
// on Replicas nodes should start. The site is not published yet.
type SiteDeployed struct {
	Site     string `json:"site"`
	Root     string `json:"root"`     // CID of the new version
	Size     int64  `json:"size"`     // bytes of the CAR
	Blocks   int    `json:"blocks"`   // blocks in the CAR
	Replicas int    `json:"replicas"` // copies wanted before publishing
	// CAR is the URL nodes fetch the verified CAR from (GET, signed by
	// the node key).
	CAR string `json:"car,omitempty"`
	// Preview: a preview deploy, pinned but not published (its site
	// changes only if it is promoted).
	Preview bool `json:"preview,omitempty"`
	// Partial: the CAR holds only the root's own blocks (a bucket
	// root's directories); the DAGs it links to are placed on their own.
	// Nodes fetch the blocks they lack (nodeproto.Pin.Partial).
	Partial bool `json:"partial,omitempty"`
	// Near, when set, is a root whose holders are preferred for this one
	// (a bucket's previous root, or its current one for a new object),
	// so a bucket's content stays on the same nodes and a new root moves
	// only the blocks it changed.
	Near string `json:"near,omitempty"`
}

// ContentReplicated: a node fetched, verified and pinned a root.
type ContentReplicated struct {
	Root string `json:"root"`
	Node string `json:"node"`           // node id
	Site string `json:"site,omitempty"` // the site it was placed for, if any
}

// ContentCollected: a placed root that nothing referenced any more for
// the collector's grace period was unplaced; its holders were told to
// unpin it (and drop its blocks that no other root reaches).
type ContentCollected struct {
	Root         string    `json:"root"`
	Labels       []string  `json:"labels,omitempty"` // the placement's labels (s3_<bucket>, ...)
	Nodes        []string  `json:"nodes,omitempty"`  // the holders told to unpin it
	Unreferenced time.Time `json:"unreferenced"`     // when the collector first found it unreferenced
	Coordinator  string    `json:"coordinator"`
}

// SitePublished: a site's name now points at Root.
type SitePublished struct {
	Site     string `json:"site"`
	Root     string `json:"root"`
	Previous string `json:"previous,omitempty"` // root it replaced; empty for a new site
	Version  int    `json:"version"`            // 1 for the first publish, +1 each time
}

// SiteRolledBack: a site's name was pointed back at an earlier root.
type SiteRolledBack struct {
	Site    string `json:"site"`
	Root    string `json:"root"` // the root now served
	From    string `json:"from"` // the root it replaced
	Version int    `json:"version"`
}

// DeployFailed: a deploy the site's token sent was refused (its CAR or
// site files failed verification, or it was too large); nothing of it
// was kept. Code is carcheck's code when it has one.
type DeployFailed struct {
	Site    string `json:"site"`
	Error   string `json:"error"`
	Code    string `json:"code,omitempty"`
	CID     string `json:"cid,omitempty"`
	Preview bool   `json:"preview,omitempty"`
}

// DomainAttached, DomainVerified, DomainRemoved: a custom domain was
// attached to a site (pending its ownership check), proved (it serves the
// site from now on; Method "txt" or "cname"), or detached.
type DomainAttached struct {
	Site   string `json:"site"`
	Domain string `json:"domain"`
}

type DomainVerified struct {
	Site   string `json:"site"`
	Domain string `json:"domain"`
	Method string `json:"method"`
}

type DomainRemoved struct {
	Site   string `json:"site"`
	Domain string `json:"domain"`
}

// NodeJoined: a node authenticated to a coordinator and is live.
type NodeJoined struct {
	Node         string `json:"node"` // node id
	Coordinator  string `json:"coordinator"`
	Session      string `json:"session"` // this connection's id
	Addr         string `json:"addr"`    // remote IP the coordinator saw
	HTTP         string `json:"http,omitempty"`
	WebTransport string `json:"webtransport,omitempty"`
	Region       string `json:"region,omitempty"`
}

// NodeLost: a node missed its heartbeats and is no longer used.
type NodeLost struct {
	Node        string    `json:"node"`
	Coordinator string    `json:"coordinator"` // who declared it lost
	Session     string    `json:"session"`     // the session that ended
	LastSeen    time.Time `json:"lastSeen"`
	Reason      string    `json:"reason"` // "heartbeat timeout", ...
}

// NodeAuditFailed: a node did not prove it holds a root it said it
// pinned (a block missing, corrupt or not served in time); it lost the
// holding and the root is placed elsewhere.
type NodeAuditFailed struct {
	Node        string `json:"node"`
	Root        string `json:"root"`
	Block       string `json:"block,omitempty"` // the block that failed, when one did
	Coordinator string `json:"coordinator"`     // who audited
	Reason      string `json:"reason"`
}

// CachePurged: a gateway dropped its cached responses for a site.
type CachePurged struct {
	Site    string `json:"site"`
	Root    string `json:"root,omitempty"` // root that is now current
	Gateway string `json:"gateway"`
}
