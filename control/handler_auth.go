package control

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
)

// Each sign-in stores a session on the bus for up to a day, so each
// credential signs in signInBurst times, then once per 1/signInRate
// seconds; beyond that the answer is 429 and nothing is stored.
const (
	signInBurst = 10
	signInRate  = 0.1
)

// apiSignIn answers POST /v1/auth/session (api.SignIn, JSON only, so no
// form of another origin can sign a browser in): it checks the
// credential, stores a session and sets its cookie; the answer is the
// api.Whoami with the session's CSRF token. A session the browser had
// ends: each sign-in gets a fresh id.
func (c *Control) apiSignIn(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		c.fail(w, r, badRequest("sign in with a JSON body (Content-Type: application/json): {\"credential\": \"...\", \"site\": \"...\"}"))
		return
	}
	var req api.SignIn
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"credential\": \"...\", \"site\": \"...\"}: %v", err))
		return
	}
	req.Credential = strings.TrimSpace(req.Credential)
	if req.Credential == "" {
		c.fail(w, r, fmt.Errorf("%w: paste the admin token, a site's deploy token or an operator's credential", ErrUnauthorized))
		return
	}
	who, err := c.whoami(r.Context(), req.Credential, strings.TrimSpace(req.Site))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !c.signInLimit.Allow(sha256.Sum256([]byte(req.Credential))) {
		c.fail(w, r, &RequestError{Kind: ErrTooManyRequests, Detail: "this credential signed in too often: try again in a minute"})
		return
	}
	id, rec, err := c.newSession(r.Context(), who, req.Credential)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if old, err := r.Cookie(c.sessionCookieName(r)); err == nil && strings.HasPrefix(old.Value, sessionPrefix) {
		// Signing in again ends the session the browser had.
		_ = c.sessions.Delete(r.Context(), sessionBucketKey(old.Value))
	}
	http.SetCookie(w, c.sessionCookie(r, id, int(c.cfg.SessionTTL.Seconds())))
	who.CSRF, who.Expires = csrfToken(id), rec.Expires
	c.log.Info("console sign-in", "role", who.Role, "site", who.Site, "operator", who.Operator)
	writeJSON(w, http.StatusOK, who)
}

// apiSignOut answers DELETE /v1/auth/session: the session ends on every
// gateway and its cookie is cleared. Without a session it only clears
// the cookie.
func (c *Control) apiSignOut(w http.ResponseWriter, r *http.Request) {
	if s := sessionOf(r); s != nil {
		if err := c.sessions.Delete(r.Context(), sessionBucketKey(s.id)); err != nil {
			c.fail(w, r, fmt.Errorf("control: end session: %w", err))
			return
		}
	}
	http.SetCookie(w, c.sessionCookie(r, "", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// apiWhoami answers GET /v1/auth/whoami: who the request's credential (a
// bearer token, with ?site=NAME for a deploy token, or the session) is,
// with the session's CSRF token and expiry when a session authenticated
// it.
func (c *Control) apiWhoami(w http.ResponseWriter, r *http.Request) {
	tok, site := credential(r), r.URL.Query().Get("site")
	s := sessionOf(r)
	if s != nil && bearer(r) == "" {
		site = s.rec.Site
	}
	if tok == "" {
		c.fail(w, r, fmt.Errorf("%w: sign in, or send Authorization: Bearer <token>", ErrUnauthorized))
		return
	}
	who, err := c.whoami(r.Context(), tok, site)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if s != nil && bearer(r) == "" {
		who.CSRF, who.Expires = csrfToken(s.id), s.rec.Expires
	}
	writeJSON(w, http.StatusOK, who)
}

// whoami checks tok (site: the site a deploy token is for) and says who
// it is and what it owns: ErrForbidden for a credential this gateway did
// not issue or no longer honours.
func (c *Control) whoami(ctx context.Context, tok, site string) (api.Whoami, error) {
	switch {
	case c.isAdmin(tok):
		return api.Whoami{Role: api.RoleAdmin}, nil
	case strings.HasPrefix(tok, coordinator.OperatorTokenPrefix):
		name, err := c.coord.VerifyOperator(tok)
		if err != nil {
			return api.Whoami{}, &RequestError{Kind: ErrForbidden, Detail: err.Error()}
		}
		who := api.Whoami{Role: api.RoleOperator, Operator: name, Nodes: []string{}}
		states, err := c.coord.NodeStates(ctx)
		if err != nil {
			return api.Whoami{}, err
		}
		for _, s := range states {
			if s.Operator == name {
				who.Nodes = append(who.Nodes, s.Node())
			}
		}
		slices.Sort(who.Nodes)
		return who, nil
	case strings.HasPrefix(tok, tokenPrefix):
		if site == "" {
			return api.Whoami{}, badRequest("a deploy token signs in with the name of its site")
		}
		if err := gateway.ValidateSiteName(site); err != nil {
			return api.Whoami{}, err
		}
		if err := c.checkSiteToken(ctx, site, tok); err != nil {
			return api.Whoami{}, err
		}
		account, err := c.tokenAccount(ctx, site)
		if err != nil {
			return api.Whoami{}, err
		}
		if account == "" {
			if rec, err := c.sites.Record(ctx, site); err == nil {
				account = rec.Account
			}
		}
		return api.Whoami{Role: api.RoleSite, Site: site, Account: account}, nil
	}
	return api.Whoami{}, &RequestError{Kind: ErrForbidden, Detail: "not a credential this gateway issued (the admin token, a site's deploy token or an operator's credential)"}
}
