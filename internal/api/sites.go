package api

import "time"

// Site actions recorded in a SiteRecord's history.
const (
	ActionPublish  = "publish"
	ActionRollback = "rollback"
)

// SiteRecord is a published site: its current root and the versions kept
// for rollback. It is also the site's value in the sites KV bucket (key:
// the site name), which every gateway reads.
type SiteRecord struct {
	Name    string        `json:"name"`
	Root    string        `json:"root"`    // current root CID
	Version int           `json:"version"` // 1 at the first publish, +1 on every change
	Updated time.Time     `json:"updated"`
	History []SiteVersion `json:"history"` // newest first, the current version included
	// Account is the account the site's traffic is charged to (set by the
	// deploy that published it); "" for none.
	Account string `json:"account,omitempty"`
	// Size is the bytes of the current root's CAR as deployed; 0 when not
	// known (a root published by CID).
	Size int64 `json:"size,omitempty"`
}

// SiteVersion is one entry of a site's history.
type SiteVersion struct {
	Version int       `json:"version"`
	Root    string    `json:"root"`
	Action  string    `json:"action"` // ActionPublish or ActionRollback
	Time    time.Time `json:"time"`
	Size    int64     `json:"size,omitempty"` // bytes of the root's CAR; 0 when not known
}

// SiteStatus is the answer of GET /v1/sites/{name}: the published record
// (nil before the first publish) and the latest deploy (nil without one).
type SiteStatus struct {
	Name   string        `json:"name"`
	Site   *SiteRecord   `json:"site,omitempty"`
	Deploy *DeployRecord `json:"deploy,omitempty"`
	// URL is the site's origin on this gateway.
	URL string `json:"url,omitempty"`
	// Previews are the site's unexpired preview deploys, with their
	// URLs (GET /v1/sites/{name} only).
	Previews []PreviewRecord `json:"previews,omitempty"`
}

// SiteList is the answer of GET /v1/sites: every site, by name.
type SiteList struct {
	Sites []SiteStatus `json:"sites"`
}

// CreateSite is the body of POST /v1/sites (admin token).
type CreateSite struct {
	Name string `json:"name"`
	// Account the site belongs to; it must exist. "" for the default
	// account (control.DefaultAccount), created if need be.
	Account string `json:"account,omitempty"`
}

// SiteCreated answers POST /v1/sites. Token is the site's deploy token,
// shown only this once.
type SiteCreated struct {
	Name    string `json:"name"`
	Token   string `json:"token"`
	Account string `json:"account,omitempty"`
}

// Rollback is the body of POST /v1/sites/{name}/rollback. An empty Root
// (or no body) rolls back to the most recent other root in the history.
type Rollback struct {
	Root string `json:"root"`
}

// DomainRecord is a custom domain attached to a site (POST
// /v1/sites/{name}/domains). It serves the site once Verified: the owner
// proved control of the name with the TXT record or the CNAME below.
type DomainRecord struct {
	Domain string `json:"domain"`
	Site   string `json:"site"`
	// Token is the value the TXT record must hold.
	Token    string    `json:"token"`
	Verified bool      `json:"verified"`
	Created  time.Time `json:"created"`
	// VerifiedAt and Method ("txt" or "cname") say how it was proved.
	VerifiedAt time.Time `json:"verifiedAt,omitzero"`
	Method     string    `json:"method,omitempty"`
	// TXTName and TXTValue are the TXT record that proves ownership;
	// CNAMETarget is the name a CNAME from Domain may point at instead.
	TXTName     string `json:"txtName"`
	TXTValue    string `json:"txtValue"`
	CNAMETarget string `json:"cnameTarget"`
}

// AttachDomain is the body of POST /v1/sites/{name}/domains.
type AttachDomain struct {
	Domain string `json:"domain"`
}

// NodeInfo is one node as GET /v1/nodes (admin) lists it: its state on
// the coordinators' shared registry, its last report and its holdings.
type NodeInfo struct {
	ID           string    `json:"id"`
	State        string    `json:"state"` // "live" or "lost"
	Reason       string    `json:"reason,omitempty"`
	Operator     string    `json:"operator,omitempty"`
	Region       string    `json:"region,omitempty"`
	Version      string    `json:"version,omitempty"`
	HTTP         string    `json:"http"`
	WebTransport string    `json:"webtransport,omitempty"`
	Coordinator  string    `json:"coordinator"`
	JoinedAt     time.Time `json:"joinedAt"`
	LastSeen     time.Time `json:"lastSeen"`
	LostAt       time.Time `json:"lostAt,omitzero"`
	Blocks       int64     `json:"blocks"`
	Capacity     int64     `json:"capacity"`
	FreeDisk     int64     `json:"freeDisk"`
	Load         float64   `json:"load"`
	// Holdings counts the roots it holds (pinned, audit passed); Auditing
	// those it says it pinned, under audit; Pending those ordered.
	Holdings int `json:"holdings"`
	Auditing int `json:"auditing"`
	Pending  int `json:"pending"`
	// Stored is the bytes of blocks it reports storing (0: not
	// reported); Capacity the bytes it offers.
	Stored int64 `json:"stored,omitempty"`
	// ASN is the autonomous system of its address in the gateway's
	// routing table (0: not known).
	ASN uint32 `json:"asn,omitempty"`
	// CertExpires is when the last WebTransport certificate of its
	// record expires (zero without one).
	CertExpires time.Time `json:"certExpires,omitzero"`
	// ClaimedUnsettled is what the node said, in its last heartbeat, it
	// holds in receipts not settled yet: its own claim, not money and
	// not checked (the ledger pays only what a settlement carries;
	// Earnings is what it settled). Absent: the node does not report it
	// (an older version), so unknown, not zero.
	ClaimedUnsettled *Unsettled `json:"claimedUnsettled,omitempty"`
}

// Unsettled is a node's receipts held and not settled, as it reports them.
type Unsettled struct {
	Sessions int    `json:"sessions"` // sessions whose receipts it holds
	Bytes    uint64 `json:"bytes"`    // receipted, not settled
	// ByAccount splits Bytes by paying account (its largest 32).
	ByAccount map[string]uint64 `json:"byAccount,omitempty"`
}

// PlacementInfo is one root as GET /v1/placements (admin) lists it: the
// copies wanted, its holders' states, and whether fewer live nodes than
// wanted hold it.
type PlacementInfo struct {
	Root            string            `json:"root"`
	Sites           []string          `json:"sites,omitempty"`
	Replicas        int               `json:"replicas"`
	Holders         map[string]string `json:"holders"` // node id → pending, auditing, pinned or failed
	LivePinned      int               `json:"livePinned"`
	UnderReplicated bool              `json:"underReplicated"`
}

// PlacementList is the answer of GET /v1/placements, under-replicated
// roots first.
type PlacementList struct {
	Placements []PlacementInfo `json:"placements"`
}

// NodeList is the answer of GET /v1/nodes.
type NodeList struct {
	Nodes []NodeInfo `json:"nodes"`
}

// FollowBucket is the body of POST /v1/sites/{name}/bucket: the site
// follows the S3 bucket named, which must belong to the site's account.
// The answer is the site's DeployRecord (Bucket set).
type FollowBucket struct {
	Bucket string `json:"bucket"`
}

// BucketRoot is a new content root of an S3 bucket, handed by the S3 API
// to the control plane to be placed (and published to the site that
// follows the bucket).
type BucketRoot struct {
	Bucket  string // the bucket's name
	Account string // the bucket's account
	Root    string // the new root
	Version int    // the bucket's version of Root
	Label   string // the placements' label of the bucket's content (never a site name)
	// Near is the bucket's previous root: the nodes holding it are
	// preferred, and a node holding it fetches only the new blocks.
	Near string
	// Site, when set, is the site the bucket's record says follows it;
	// Follow makes the site follow this bucket from now on (a new
	// binding), else the root is deployed to Site only while the site
	// still follows this bucket.
	Site   string
	Follow bool
}
