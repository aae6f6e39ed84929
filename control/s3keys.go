package control

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/secret"
)

// S3 access keys. An S3 client signs each request with AWS Signature V4,
// an HMAC keyed by the secret: the server must recompute that HMAC, so it
// needs the secret itself, and a hash of it (what deploy tokens keep)
// would not do. The secret is kept sealed (secret.Sealer, AES-256-GCM
// under a key derived from the admin token for this purpose) in the
// s3_keys bucket, shown once when the key is created and never logged.
const (
	s3KeyIDPrefix = "VK"
	s3KeyIDLen    = 20 // as AWS's access key ids
	maxS3KeysList = 1000
)

// s3KeyRecord is a key's value in the s3_keys bucket (key: its id).
type s3KeyRecord struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Secret  []byte    `json:"secret"` // sealed
	Created time.Time `json:"created"`
}

// newS3KeyID returns "VK" and 18 random characters of A-Z2-7, the
// alphabet of AWS's ids: valid in a NATS KV key and in every client.
func newS3KeyID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, s3KeyIDLen-len(s3KeyIDPrefix))
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return s3KeyIDPrefix + string(b)
}

// validS3KeyID reports whether id is one newS3KeyID could make.
func validS3KeyID(id string) bool {
	rest, ok := strings.CutPrefix(id, s3KeyIDPrefix)
	if !ok || len(id) != s3KeyIDLen {
		return false
	}
	for _, c := range rest {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// CreateS3Key makes an access key for account, which must exist, and
// returns it with its secret (to be shown once).
func (c *Control) CreateS3Key(ctx context.Context, account string) (api.S3Key, error) {
	if err := c.accountExists(ctx, account); err != nil {
		return api.S3Key{}, err
	}
	sec := secret.New("")
	rec := s3KeyRecord{ID: newS3KeyID(), Account: account, Secret: c.s3Sealer.Seal(sec), Created: c.cfg.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return api.S3Key{}, err
	}
	if _, err := c.s3Keys.Create(ctx, rec.ID, b); err != nil {
		return api.S3Key{}, fmt.Errorf("control: store S3 key: %w", err)
	}
	c.log.Info("S3 access key created", "key", rec.ID, "account", account)
	return api.S3Key{ID: rec.ID, Account: account, Created: rec.Created, Secret: sec}, nil
}

func (c *Control) s3Key(ctx context.Context, id string) (s3KeyRecord, bool, error) {
	if !validS3KeyID(id) {
		return s3KeyRecord{}, false, nil
	}
	e, err := c.s3Keys.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s3KeyRecord{}, false, nil
	}
	if err != nil {
		return s3KeyRecord{}, false, fmt.Errorf("control: read S3 key: %w", err)
	}
	var rec s3KeyRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return s3KeyRecord{}, false, fmt.Errorf("control: S3 key %s: %w", id, err)
	}
	return rec, true, nil
}

// S3AccessKey returns the account and the secret of access key id, for a
// SigV4 verifier; ok is false for a key that does not exist (or was
// revoked).
func (c *Control) S3AccessKey(ctx context.Context, id string) (account, sec string, ok bool, err error) {
	rec, ok, err := c.s3Key(ctx, id)
	if err != nil || !ok {
		return "", "", false, err
	}
	sec, err = c.s3Sealer.Open(rec.Secret)
	if err != nil {
		return "", "", false, fmt.Errorf("control: S3 key %s: %w", id, err)
	}
	return rec.Account, sec, true, nil
}

// S3Keys lists account's access keys, without their secrets.
func (c *Control) S3Keys(ctx context.Context, account string) ([]api.S3Key, error) {
	lister, err := c.s3Keys.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("control: list S3 keys: %w", err)
	}
	defer lister.Stop()
	out := []api.S3Key{}
	for id := range lister.Keys() {
		rec, ok, err := c.s3Key(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok && rec.Account == account && len(out) < maxS3KeysList {
			out = append(out, api.S3Key{ID: rec.ID, Account: rec.Account, Created: rec.Created})
		}
	}
	slices.SortFunc(out, func(a, b api.S3Key) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RevokeS3Key deletes access key id: requests signed with it are refused
// from then on (InvalidAccessKeyId).
func (c *Control) RevokeS3Key(ctx context.Context, id string) error {
	if err := c.s3Keys.Delete(ctx, id); err != nil {
		return fmt.Errorf("control: revoke S3 key: %w", err)
	}
	c.log.Info("S3 access key revoked", "key", id)
	return nil
}

// authorizeKeys checks r may manage account's keys: the admin token,
// or the deploy token of site, a site of that account.
func (c *Control) authorizeKeys(r *http.Request, account, site string) error {
	tok := bearer(r)
	switch {
	case tok == "":
		return fmt.Errorf("%w: send Authorization: Bearer <admin token, or the deploy token of a site of the account>", ErrUnauthorized)
	case c.isAdmin(tok):
		return nil
	case site == "":
		return &RequestError{Kind: ErrForbidden, Detail: "not the admin token (a deploy token must name its site)"}
	}
	if err := c.authorizeSite(r, site); err != nil {
		return err
	}
	e, err := c.tokens.Get(r.Context(), site)
	if err != nil {
		return fmt.Errorf("control: read token: %w", err)
	}
	var rec TokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return fmt.Errorf("control: token record %q: %w", site, err)
	}
	if rec.Account != account {
		return &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("site %q does not belong to account %q", site, account)}
	}
	return nil
}

func (c *Control) apiCreateS3Key(w http.ResponseWriter, r *http.Request) {
	var req api.CreateS3Key
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"account\": \"...\"}: %v", err))
		return
	}
	if !payment.ValidAccount(req.Account) {
		c.fail(w, r, badAccountName(req.Account))
		return
	}
	if err := c.authorizeKeys(r, req.Account, req.Site); err != nil {
		c.fail(w, r, err)
		return
	}
	k, err := c.CreateS3Key(r.Context(), req.Account)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, k)
}

func (c *Control) apiListS3Keys(w http.ResponseWriter, r *http.Request) {
	account := r.URL.Query().Get("account")
	if !payment.ValidAccount(account) {
		c.fail(w, r, badAccountName(account))
		return
	}
	if err := c.authorizeKeys(r, account, r.URL.Query().Get("site")); err != nil {
		c.fail(w, r, err)
		return
	}
	keys, err := c.S3Keys(r.Context(), account)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.S3KeyList{Keys: keys})
}

func (c *Control) apiRevokeS3Key(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, ok, err := c.s3Key(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	account := rec.Account
	if !ok {
		account = "" // only the admin learns that a key does not exist
	}
	if err := c.authorizeKeys(r, account, r.URL.Query().Get("site")); err != nil {
		c.fail(w, r, err)
		return
	}
	if !ok {
		c.fail(w, r, fmt.Errorf("%w: no S3 key %q", ErrNotFound, clip(id)))
		return
	}
	if err := c.RevokeS3Key(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
