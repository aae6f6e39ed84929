package control

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/secret"
)

// Console sessions. Signing in (POST /v1/auth/session) with a credential
// the gateway issued makes a session: a random 256-bit id under the
// prefix "vcs_" sent back as the SessionCookie (HttpOnly, SameSite=Strict,
// Secure when the gateway is reached over HTTPS, Path /v1/). The sessions
// bucket keeps, under SHA-256(id), the role, the site or operator, the
// expiry and the credential itself sealed (secret.Sealer, a key derived
// from the admin token, which every gateway of a cluster shares): each
// request the cookie authenticates is authorized with that credential by
// the same checks as a bearer token, so a credential revoked or replaced
// ends its sessions too, and every gateway on the bus accepts the cookie.
//
// The cookie is ambient: a page of another origin can make the browser
// send it. So every request other than GET and HEAD that the cookie
// authenticates must carry the session's CSRF token in the CSRFHeader, an
// HMAC of the session id that only the console reads (in the sign-in and
// whoami answers, which no other origin can read: the API sends no CORS
// headers). SameSite=Strict alone would not do: sites served under the
// gateway's domain are the same site as its own host.
const (
	SessionCookie = "verity_session"
	// HostSessionCookie is the session cookie's name under HTTPS: a
	// browser takes a "__Host-" cookie only from the host itself (Secure,
	// Path=/, no Domain), so a site under the gateway's domain can toss
	// no such cookie for it, neither a junk one nor its owner's session.
	HostSessionCookie = "__Host-" + SessionCookie
	CSRFHeader        = "X-Verity-CSRF"

	sessionPrefix = "vcs_"
	// maxSessionCookies is how many cookies of SessionCookie's name a
	// request's session is looked for in.
	maxSessionCookies = 4
	// authPath is the sign-in and sign-out endpoint; whoamiPath answers
	// who the request's credential is.
	authPath   = "/v1/auth/session"
	whoamiPath = "/v1/auth/whoami"
)

// sessionRecord is a session's value in the sessions bucket (key: the
// hex SHA-256 of the session id).
type sessionRecord struct {
	Role       string    `json:"role"` // api.Role*
	Site       string    `json:"site,omitempty"`
	Operator   string    `json:"operator,omitempty"`
	Credential []byte    `json:"credential"` // sealed
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
}

// session is a request's valid session.
type session struct {
	id  string
	rec sessionRecord
	tok string // the credential, unsealed
}

type sessionKey struct{}

// sessionOf returns the session r was authenticated with, or nil.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

func sessionBucketKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// csrfToken is the session's anti-forgery token: HMAC-SHA256 keyed by
// the session id, so it is bound to the session and not stored.
func csrfToken(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("verity console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errNoSession is the answer to a cookie that names no live session.
var errNoSession = &RequestError{Kind: ErrUnauthorized,
	Detail: "the session cookie names no session (forged, expired or signed out): sign in again"}

// withSession authenticates r by its session cookie when it carries no
// Authorization header: it refuses a cookie that names no live session
// (401) and an unsafe request without the session's CSRF token (403), and
// returns r with the session in its context. A request with an
// Authorization header, or without the cookie, is returned as it is.
func (c *Control) withSession(r *http.Request) (*http.Request, error) {
	if r.Header.Get("Authorization") != "" {
		return r, nil
	}
	cks := r.CookiesNamed(c.sessionCookieName(r))
	if len(cks) == 0 || cks[0].Value == "" {
		return r, nil
	}
	if r.URL.Path == authPath && r.Method == http.MethodPost {
		// Signing in again: the body's credential decides, not the cookie.
		return r, nil
	}
	// A site under the gateway's domain can set a cookie of this name for
	// the parent domain, which the browser sends first: the first cookie
	// that names a live session is the one, of the first few (each is a
	// read of the bus).
	var s *session
	var err error
	for _, ck := range cks[:min(len(cks), maxSessionCookies)] {
		if s, err = c.loadSession(r.Context(), ck.Value); err == nil {
			break
		}
		if statusOf(err) != http.StatusUnauthorized {
			return r, err
		}
	}
	if err != nil {
		return r, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" {
			return r, &RequestError{Kind: ErrForbidden, Detail: "a request authenticated by the session cookie must send the session's CSRF token in the " + CSRFHeader + " header"}
		}
		if !hmac.Equal([]byte(got), []byte(csrfToken(s.id))) {
			return r, &RequestError{Kind: ErrForbidden, Detail: "the " + CSRFHeader + " header is not this session's CSRF token"}
		}
	}
	return r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), nil
}

// loadSession reads session id from the bucket: errNoSession when there
// is none, it expired, or its credential does not unseal.
func (c *Control) loadSession(ctx context.Context, id string) (*session, error) {
	if !strings.HasPrefix(id, sessionPrefix) || len(id) > 128 {
		return nil, errNoSession
	}
	key := sessionBucketKey(id)
	e, err := c.sessions.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("control: read session: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("control: session record: %w", err)
	}
	if !c.cfg.Now().Before(rec.Expires) {
		_ = c.sessions.Delete(ctx, key)
		return nil, &RequestError{Kind: ErrUnauthorized, Detail: "the session expired: sign in again"}
	}
	tok, err := c.sessionSealer.Open(rec.Credential)
	if err != nil {
		return nil, errNoSession
	}
	return &session{id: id, rec: rec, tok: tok}, nil
}

// newSession stores a session for who, signed in with tok, and returns
// its id.
func (c *Control) newSession(ctx context.Context, who api.Whoami, tok string) (string, sessionRecord, error) {
	now := c.cfg.Now().UTC()
	rec := sessionRecord{Role: who.Role, Site: who.Site, Operator: who.Operator,
		Credential: c.sessionSealer.Seal(tok), Created: now, Expires: now.Add(c.cfg.SessionTTL)}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", rec, err
	}
	id := secret.New(sessionPrefix)
	if _, err := c.sessions.Create(ctx, sessionBucketKey(id), b); err != nil {
		return "", rec, fmt.Errorf("control: store session: %w", err)
	}
	return id, rec, nil
}

// secure reports whether the session cookie is Secure: when r came over
// HTTPS or the gateway's public URL is HTTPS.
func (c *Control) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(c.cfg.PublicURL, "https://")
}

// sessionCookieName is HostSessionCookie under HTTPS, else SessionCookie.
func (c *Control) sessionCookieName(r *http.Request) string {
	if c.secure(r) {
		return HostSessionCookie
	}
	return SessionCookie
}

// sessionCookie is the cookie carrying id (an empty id and a negative
// MaxAge clear it): under HTTPS HostSessionCookie, Secure, for the whole
// host (as "__Host-" requires); else SessionCookie for /v1/.
func (c *Control) sessionCookie(r *http.Request, id string, maxAge int) *http.Cookie {
	ck := &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/v1/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
	if c.secure(r) {
		ck.Name, ck.Path, ck.Secure = HostSessionCookie, "/", true
	}
	return ck
}
