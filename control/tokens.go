package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/secret"
)

// Deploy tokens. A site's token is 32 random bytes, base64url, prefixed
// "vdt_"; the tokens bucket keeps only SHA-256(salt ‖ token) with a
// per-site random salt. The tokens are high-entropy secrets, not
// passwords, so a slow hash would add nothing but latency.
const (
	tokenPrefix      = "vdt_"
	adminTokenPrefix = "vat_"
	adminTokenFile   = "admin-token"
)

// TokenRecord is a site's value in the tokens KV bucket (key: site name).
type TokenRecord struct {
	Site    string    `json:"site"`
	Salt    []byte    `json:"salt"` // 16 random bytes
	Hash    []byte    `json:"hash"` // SHA-256(salt ‖ token)
	Created time.Time `json:"created"`
	// Account the site's deploys are charged to unless the admin names
	// another; "" for none.
	Account string `json:"account,omitempty"`
}

// loadAdminToken returns cfg.AdminToken, or the token in
// DataDir/admin-token, generating it on first start.
func loadAdminToken(dataDir string) (token, path string, created bool, err error) {
	path = filepath.Join(dataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, path, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", path, false, fmt.Errorf("control: admin token: %w", err)
	}
	token = secret.New(adminTokenPrefix)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", path, false, fmt.Errorf("control: admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", path, false, fmt.Errorf("control: admin token: %w", err)
	}
	return token, path, true, nil
}

// CreateSite registers site name and returns its deploy token, which is
// shown only this once. It fails with ErrSiteExists when the site already
// has a token and with a *SiteNameError for an invalid name.
func (c *Control) CreateSite(ctx context.Context, name string) (string, error) {
	return c.CreateSiteFor(ctx, name, "")
}

// CreateSiteFor is CreateSite for a site that belongs to account, which
// must exist (ledger.ErrUnknownAccount; 400 for a bad name); "" names
// DefaultAccount, created if need be. The site's deploy token may then
// deploy only for that account.
func (c *Control) CreateSiteFor(ctx context.Context, name, account string) (string, error) {
	if err := gateway.ValidateSiteName(name); err != nil {
		return "", err
	}
	var err error
	if account == "" {
		account, err = c.defaultAccount(ctx)
	} else {
		err = c.accountExists(ctx, account)
	}
	if err != nil {
		return "", err
	}
	token := secret.New(tokenPrefix)
	h := secret.Hash(token)
	rec := TokenRecord{Site: name, Salt: h.Salt, Hash: h.Hash, Created: c.cfg.Now().UTC(), Account: account}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if _, err := c.tokens.Create(ctx, name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("%w: %q", ErrSiteExists, name)
		}
		return "", fmt.Errorf("control: store token: %w", err)
	}
	c.log.Info("site created", "site", name)
	return token, nil
}

// bearer returns the request's bearer token, or "".
func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// credential returns the request's credential: its bearer token, else
// the credential of the console session it was authenticated with
// (withSession), else "".
func credential(r *http.Request) string {
	if tok := bearer(r); tok != "" {
		return tok
	}
	if s := sessionOf(r); s != nil {
		return s.tok
	}
	return ""
}

// isAdmin reports whether token is the admin token, in constant time.
func (c *Control) isAdmin(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], c.adminHash[:]) == 1
}

// authorizeAdmin checks r carries the admin token: ErrUnauthorized without
// a token, ErrForbidden with another one.
func (c *Control) authorizeAdmin(r *http.Request) error {
	tok := credential(r)
	switch {
	case tok == "":
		return fmt.Errorf("%w: send Authorization: Bearer <admin token>", ErrUnauthorized)
	case !c.isAdmin(tok):
		return &RequestError{Kind: ErrForbidden, Detail: "not the admin token"}
	}
	return nil
}

// authorizeSite checks r carries site's deploy token or the admin token:
// ErrUnauthorized without a token, ErrForbidden with a wrong one (or for a
// site that has no token).
func (c *Control) authorizeSite(r *http.Request, site string) error {
	tok := credential(r)
	if tok == "" {
		return fmt.Errorf("%w: send Authorization: Bearer <deploy token of site %q>", ErrUnauthorized, site)
	}
	if c.isAdmin(tok) {
		return nil
	}
	return c.checkSiteToken(r.Context(), site, tok)
}

// checkSiteToken checks tok is site's deploy token: ErrForbidden when it
// is not (or the site has no token).
func (c *Control) checkSiteToken(ctx context.Context, site, tok string) error {
	forbidden := &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("the token is not valid for site %q", site)}
	matches := func(val []byte) (bool, error) {
		var rec TokenRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return false, fmt.Errorf("control: token record %q: %w", site, err)
		}
		return (secret.Hashed{Salt: rec.Salt, Hash: rec.Hash}).Matches(tok), nil
	}
	e, err := c.tokens.Get(ctx, site)
	switch {
	case err == nil:
		if ok, err := matches(e.Value()); err != nil || ok {
			return err
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Hash anyway, so a missing site costs what a wrong token does.
		secret.Burn(tok)
	default:
		return fmt.Errorf("control: read token: %w", err)
	}
	// Any replica of the bucket may answer a Get, and one may not have
	// stored yet a token created or rotated a moment ago (a site created
	// and deployed at once, through any gateway): before refusing, ask the
	// stream's leader, which has every acknowledged write
	// (events.LeaderKV).
	e, err = c.tokensLeader.Get(ctx, site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		secret.Burn(tok)
		return forbidden
	}
	if err != nil {
		return fmt.Errorf("control: read token: %w", err)
	}
	ok, err := matches(e.Value())
	if err != nil {
		return err
	}
	if !ok {
		return forbidden
	}
	return nil
}

// authorizeAccount checks r may read account name: the admin token, or a
// site's deploy token (a console session of that site, or a bearer token
// with ?site=NAME) whose site's deploys are charged to name.
func (c *Control) authorizeAccount(r *http.Request, name string) error {
	tok := credential(r)
	switch {
	case tok == "":
		return fmt.Errorf("%w: send Authorization: Bearer <admin token, or a deploy token with ?site=NAME>", ErrUnauthorized)
	case c.isAdmin(tok):
		return nil
	}
	site := r.URL.Query().Get("site")
	if s := sessionOf(r); s != nil && bearer(r) == "" {
		if site != "" && site != s.rec.Site {
			// ?site= narrows an answer (the history's) to that site: a
			// session reads its own site's only.
			return &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("this session is of site %q, not %q", s.rec.Site, clip(site))}
		}
		site = s.rec.Site
	}
	if site == "" {
		return &RequestError{Kind: ErrForbidden, Detail: "not the admin token (a deploy token reads its site's account with ?site=NAME)"}
	}
	if err := c.checkSiteToken(r.Context(), site, tok); err != nil {
		return err
	}
	own, err := c.tokenAccount(r.Context(), site)
	if err != nil {
		return err
	}
	if own != name {
		return &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("site %q is charged to another account than %q", site, name)}
	}
	return nil
}

// operatorOf returns who may read the nodes r asks about: "" for the
// admin, else the operator whose credential r carries; ErrUnauthorized
// without a credential, ErrForbidden with another one.
func (c *Control) operatorOf(r *http.Request) (string, error) {
	tok := credential(r)
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: send Authorization: Bearer <admin token or operator credential>", ErrUnauthorized)
	case c.isAdmin(tok):
		return "", nil
	case !strings.HasPrefix(tok, coordinator.OperatorTokenPrefix):
		return "", &RequestError{Kind: ErrForbidden, Detail: "not the admin token or an operator's credential"}
	}
	name, err := c.coord.VerifyOperator(tok)
	if err != nil {
		return "", &RequestError{Kind: ErrForbidden, Detail: err.Error()}
	}
	return name, nil
}

// authorizeNode checks r may read node id: the admin, or the operator
// the node joined with. Another operator's node and a node the registry
// does not know answer alike (ErrForbidden).
func (c *Control) authorizeNode(r *http.Request, id string) error {
	op, err := c.operatorOf(r)
	if err != nil || op == "" {
		return err
	}
	states, err := c.coord.NodeStates(r.Context())
	if err != nil {
		return err
	}
	for _, s := range states {
		if s.Node() == id && s.Operator == op {
			return nil
		}
	}
	return &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("node %s is not one of operator %q's nodes", clip(id), op)}
}
