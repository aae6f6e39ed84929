package api

import "time"

// CreateS3Key is the body of POST /v1/keys: an S3 access key for Account.
// The admin token may create one for any account; a site's deploy token
// for the account its site belongs to, naming that Site.
type CreateS3Key struct {
	Account string `json:"account"`
	Site    string `json:"site,omitempty"`
}

// S3Key is an S3 access key. Secret is set only in the answer to POST
// /v1/keys: it is shown once, and the gateway keeps it sealed.
type S3Key struct {
	ID      string    `json:"id"` // the access key id, as clients send it
	Account string    `json:"account"`
	Created time.Time `json:"created"`
	Secret  string    `json:"secret,omitempty"`
}

// S3KeyList answers GET /v1/keys?account=NAME.
type S3KeyList struct {
	Keys []S3Key `json:"keys"`
}
