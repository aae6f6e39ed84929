package api

// Error is the body of every error answer of the control plane's API
// (and, with only Error set, of the worker API under /.verity/).
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"` // carcheck code for a refused CAR
	CID   string `json:"cid,omitempty"`  // the offending block
}
