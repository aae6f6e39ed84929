package api

import "time"

// Roles a credential signs in as (Whoami.Role).
const (
	RoleAdmin    = "admin"    // the gateway's admin token: everything
	RoleSite     = "site"     // a site's deploy token: that site and its account
	RoleOperator = "operator" // a node operator's credential: its nodes
)

// SignIn is the body of POST /v1/auth/session: a credential the gateway
// issued (the admin token, a site's deploy token, an operator's
// credential) and, with a deploy token, the site it belongs to.
type SignIn struct {
	Credential string `json:"credential"`
	Site       string `json:"site,omitempty"`
}

// Whoami is the answer of POST /v1/auth/session and GET /v1/auth/whoami:
// who the request's credential (or session) is and what it owns.
type Whoami struct {
	Role     string   `json:"role"`               // Role*
	Site     string   `json:"site,omitempty"`     // RoleSite: its site
	Account  string   `json:"account,omitempty"`  // RoleSite: the account its deploys are charged to
	Operator string   `json:"operator,omitempty"` // RoleOperator: its name
	Nodes    []string `json:"nodes,omitempty"`    // RoleOperator: the ids of its nodes, live or lost
	// CSRF is the session's anti-forgery token, with a session cookie
	// only: every request other than GET and HEAD authenticated by the
	// cookie must send it in the X-Verity-CSRF header.
	CSRF string `json:"csrf,omitempty"`
	// Expires is when the session ends, with a session cookie only.
	Expires time.Time `json:"expires,omitzero"`
}
