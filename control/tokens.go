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

// isAdmin reports whether token is the admin token, in constant time.
func (c *Control) isAdmin(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], c.adminHash[:]) == 1
}

// authorizeAdmin checks r carries the admin token: ErrUnauthorized without
// a token, ErrForbidden with another one.
func (c *Control) authorizeAdmin(r *http.Request) error {
	tok := bearer(r)
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
	tok := bearer(r)
	if tok == "" {
		return fmt.Errorf("%w: send Authorization: Bearer <deploy token of site %q>", ErrUnauthorized, site)
	}
	if c.isAdmin(tok) {
		return nil
	}
	forbidden := &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("the token is not valid for site %q", site)}
	e, err := c.tokens.Get(r.Context(), site)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Hash anyway, so a missing site costs what a wrong token does.
		secret.Burn(tok)
		return forbidden
	}
	if err != nil {
		return fmt.Errorf("control: read token: %w", err)
	}
	var rec TokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return fmt.Errorf("control: token record %q: %w", site, err)
	}
	if !(secret.Hashed{Salt: rec.Salt, Hash: rec.Hash}).Matches(tok) {
		return forbidden
	}
	return nil
}
