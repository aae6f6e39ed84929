package api

import "time"

// Deploy states in a DeployRecord.
const (
	DeployPlacing   = "placing"   // verified; waiting for Replicas nodes to pin it
	DeployPublished = "published" // the site serves this root
)

// DeployRecord is a site's latest deploy: the answer of POST
// /v1/sites/{name}/deploy and SiteStatus.Deploy. It is also the site's
// value in the deploys KV bucket (key: the site name).
type DeployRecord struct {
	Site      string    `json:"site"`
	Root      string    `json:"root"`
	Size      int64     `json:"size"`   // bytes of the CAR
	Blocks    int       `json:"blocks"` // distinct blocks
	Replicas  int       `json:"replicas"`
	Account   string    `json:"account,omitempty"` // the account the site is charged to once published
	State     string    `json:"state"`             // DeployPlacing or DeployPublished
	Deployed  time.Time `json:"deployed"`
	Published time.Time `json:"published,omitzero"`
	// Bucket, when set, is the S3 bucket the site follows: each change
	// of the bucket deploys its new root (docs/storage.md, "A bucket as
	// a site"); BucketVersion is the bucket's version of Root. A deploy
	// of a CAR clears it.
	Bucket        string `json:"bucket,omitempty"`
	BucketVersion int    `json:"bucket_version,omitempty"`
}
