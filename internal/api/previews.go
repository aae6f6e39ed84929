package api

import "time"

// PreviewRecord is a preview deploy: a root uploaded, verified and placed
// for a site without publishing it, served at its own origin
// (URL) until Expires. It is the answer of POST
// /v1/sites/{name}/deploy?preview=1 and the value in the previews KV
// bucket (key: the root CID).
type PreviewRecord struct {
	Site     string    `json:"site"`
	Root     string    `json:"root"`
	Size     int64     `json:"size"`   // bytes of the CAR
	Blocks   int       `json:"blocks"` // distinct blocks
	Replicas int       `json:"replicas"`
	Account  string    `json:"account,omitempty"` // pays for the preview's traffic
	Deployed time.Time `json:"deployed"`
	Expires  time.Time `json:"expires"`
	URL      string    `json:"url,omitempty"` // the preview's origin, in answers only
	// Pinned is how many live nodes hold the root (GET answers only): it
	// is served, and can be promoted, once Pinned reaches Replicas.
	Pinned int `json:"pinned"`
}

// Promote is the body of POST /v1/sites/{name}/promote.
type Promote struct {
	Root string `json:"root"`
}
