package wasmclient

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
)

// SessionPath is where the gateway serves the session document on every
// site origin.
const SessionPath = "/.verity/v1/session"

// ReportPath is where the worker posts reports about misbehaving nodes.
const ReportPath = "/.verity/v1/report"

// Session is the gateway's answer to GET /.verity/v1/session: the site's
// current root and the nodes to fetch it from.
type Session struct {
	Version  int    `json:"version"`
	Site     string `json:"site"`
	Root     string `json:"root"`
	TTL      int    `json:"ttl"`      // seconds the session may be cached
	Fallback string `json:"fallback"` // trustless gateway path, e.g. "/.verity/v1/ipfs"
	Nodes    []Node `json:"nodes"`

	// Payments (docs/payments.md): present when the worker sent a session
	// key (?key=).
	Account        string `json:"account,omitempty"`
	Voucher        string `json:"voucher,omitempty"`        // base64 of the voucher encoding
	VoucherExpires int64  `json:"voucherExpires,omitempty"` // Unix seconds
	PaymentError   string `json:"paymentError,omitempty"`   // "account_frozen": no voucher, use the gateway

	root cid.CID
}

// Node is one storage node as the session lists it.
type Node struct {
	ID           string   `json:"id"`
	WebTransport string   `json:"webtransport,omitempty"` // e.g. https://127.0.0.1:4433/verity/v1
	CertHashes   []string `json:"certHashes,omitempty"`   // base64 SHA-256 of the node's certificates
	HTTP         string   `json:"http,omitempty"`         // trustless gateway base URL
	Record       RawJSON  `json:"record,omitempty"`       // the node's signed record
	WebRTC       bool     `json:"webrtc,omitempty"`       // reachable over WebRTC through a bridging page
}

// GatewayNodeID names the gateway fallback wherever a node id is expected.
const GatewayNodeID = "gateway"

// CertHashBytes decodes CertHashes, skipping entries that are not 32 bytes
// of standard or URL-safe base64.
func (n Node) CertHashBytes() [][]byte {
	var out [][]byte
	for _, s := range n.CertHashes {
		if b, ok := decodeBase64(s); ok && len(b) == 32 {
			out = append(out, b)
		}
	}
	return out
}

// RootCID is the parsed Root.
func (s *Session) RootCID() cid.CID { return s.root }

// ParseSession decodes and checks a session document.
func ParseSession(data []byte) (*Session, error) {
	s, err := decodeSession(data)
	if err != nil {
		return nil, errfmt.Errorf("%w: %v", ErrSession, err)
	}
	return s.check()
}

func (s *Session) check() (*Session, error) {
	if s.Version != 1 {
		return nil, errfmt.Errorf("%w: version %d", ErrSession, s.Version)
	}
	root, err := cid.Parse(s.Root)
	if err != nil {
		return nil, errfmt.Errorf("%w: root: %v", ErrSession, err)
	}
	s.root = root
	if s.TTL < 0 {
		s.TTL = 0
	}
	nodes := s.Nodes[:0]
	for _, n := range s.Nodes {
		if n.ID == "" || n.ID == GatewayNodeID {
			continue
		}
		nodes = append(nodes, n)
	}
	s.Nodes = nodes
	return s, nil
}

// SessionLoader loads the current session document.
type SessionLoader interface {
	LoadSession(ctx context.Context) (*Session, error)
}

// KeyedSessionLoader is the optional capability of a SessionLoader to send
// the worker's session public key (query "key"), for which the gateway
// issues a voucher.
type KeyedSessionLoader interface {
	LoadSessionKey(ctx context.Context, key string) (*Session, error)
}

// sessionCache keeps the last session for its TTL and reloads it after, so a
// newly published root is picked up. A failed reload keeps serving the stale
// session.
type sessionCache struct {
	loader     SessionLoader
	payer      *payer
	now        func() time.Time
	defaultTTL time.Duration

	mu      sync.Mutex
	cur     *Session
	expires time.Time

	// revalidate, when set, reloads the session in the background (it
	// calls sessionCache.revalidated): a request that finds the session
	// past its ttl by less than staleMax goes on with it meanwhile,
	// instead of waiting for the gateway's round trip. revalidating is
	// true while one runs.
	revalidate   func()
	revalidating bool

	// noted is a root the worker script's own session load found
	// (Client.NoteRoot); a held session on another root is not served on
	// past its ttl, and is reloaded by the next request even within it.
	notedMu  sync.Mutex
	noted    string
	notedGen int // notes so far

	// seq counts loads (under the load token); curSeq is the one cur came
	// from (under mu): a load that finishes after a later one installs
	// nothing.
	seq, curSeq int

	// loading holds a token while a load is in flight: one at a time, so
	// the early load (ahead) and a reload never send the gateway one
	// session key twice (each would get a voucher, and the account a
	// hold, of which only one can be used). Taken after mu, never held
	// while taking it; waiting for it ends with the caller's context.
	loadOnce sync.Once
	loading  chan struct{}
}

// acquire takes the load token, or reports false when ctx ends first.
func (c *sessionCache) acquire(ctx context.Context) bool {
	c.loadOnce.Do(func() { c.loading = make(chan struct{}, 1) })
	select {
	case c.loading <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *sessionCache) release() { <-c.loading }

// get returns the session to serve from; past says it is one held past
// its ttl while it reloads, or kept when a load failed: a deploy may have
// replaced its root.
func (c *sessionCache) get(ctx context.Context) (s *Session, past bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	// A voucher a node or the signer refused is replaced at once, not at
	// the session's expiry.
	renew := c.payer != nil && c.payer.takeRenew()
	noted, _ := c.notedRoot()
	if noted != "" && c.cur != nil && noted != c.cur.Root {
		// The worker script found another root: a page of it must not get
		// files of this one.
		renew = true
	}
	if c.cur != nil && now.Before(c.expires) && !renew {
		return c.cur, false, nil
	}
	// A session past its ttl serves on while it is reloaded, unless the
	// worker holds no valid voucher where it held one: then the reload
	// brings the next one before any node is asked.
	if c.cur != nil && !renew && c.revalidate != nil && now.Before(c.expires.Add(staleMax)) &&
		(c.payer == nil || !c.payer.wantsVoucher()) {
		if !c.revalidating {
			c.revalidating = true
			c.revalidate()
		}
		return c.cur, true, nil
	}
	var (
		ttl    time.Duration
		n, gen int
	)
	if !c.acquire(ctx) {
		err = context.Cause(ctx)
	} else {
		noted, _ = c.notedRoot()
		if c.cur != nil && now.Before(c.expires) && (noted == "" || noted == c.cur.Root) && c.payer != nil && c.payer.hasVoucher() {
			// An early load that was in flight brought the voucher the
			// renewal asked for (and a root as recent as the script's).
			c.release()
			return c.cur, false, nil
		}
		s, ttl, n, gen, err = c.load(ctx)
		c.release()
	}
	if err != nil {
		if c.cur != nil {
			return c.cur, true, nil
		}
		if !errors.Is(err, ErrSession) {
			err = errfmt.Errorf("%w: %w", ErrSession, err)
		}
		return nil, false, err
	}
	c.install(s, now.Add(ttl), n, gen)
	return s, false, nil
}

// install makes s the session, from the load numbered n, which started
// after gen notes (c.mu held): it answers those notes, not later ones.
func (c *sessionCache) install(s *Session, expires time.Time, n, gen int) {
	c.cur, c.expires, c.curSeq = s, expires, n
	c.notedMu.Lock()
	if c.notedGen == gen {
		c.noted = ""
	}
	c.notedMu.Unlock()
}

// note records the root the worker script's session load found.
func (c *sessionCache) note(root string) {
	c.notedMu.Lock()
	c.noted = root
	c.notedGen++
	c.notedMu.Unlock()
}

// notedRoot returns the noted root and the count of notes so far.
func (c *sessionCache) notedRoot() (string, int) {
	c.notedMu.Lock()
	defer c.notedMu.Unlock()
	return c.noted, c.notedGen
}

// staleMax is how long past its ttl a session is still used while it is
// reloaded in the background (sessionCache.revalidate), as the worker
// script uses its own copy; a request that finds it older waits for the
// reload. A running worker whose requests keep coming reloads it within
// one round trip of its ttl.
const staleMax = time.Minute

// ahead loads the session now, with the payer's fresh session key, while
// requests go on with the current one (get does not wait for it): the
// next voucher is fetched before the current one runs out. A failed load
// changes nothing.
func (c *sessionCache) ahead(ctx context.Context) {
	now := c.now()
	if !c.acquire(ctx) {
		return
	}
	s, ttl, n, gen, err := c.load(ctx)
	c.release()
	if err != nil {
		return
	}
	c.mu.Lock()
	if n > c.curSeq {
		c.install(s, now.Add(ttl), n, gen)
	}
	c.mu.Unlock()
}

// revalidated reloads a session that get found past its ttl, while
// requests go on with it (as ahead does; the load token is released
// before mu is taken, as get takes them in the other order). A failed
// load leaves the next request past the ttl to try again.
func (c *sessionCache) revalidated(ctx context.Context) {
	c.ahead(ctx)
	c.mu.Lock()
	c.revalidating = false
	c.mu.Unlock()
}

// load loads the session, with the payer's session key when the loader
// can send one, and hands its payment fields to the payer; n numbers the
// load, gen counts the notes made before it started. The load token is
// held.
func (c *sessionCache) load(ctx context.Context) (s *Session, ttl time.Duration, n, gen int, err error) {
	c.seq++
	n = c.seq
	_, gen = c.notedRoot()
	if kl, ok := c.loader.(KeyedSessionLoader); ok && c.payer != nil {
		s, err = kl.LoadSessionKey(ctx, c.payer.sessionKey())
	} else {
		s, err = c.loader.LoadSession(ctx)
	}
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if c.payer != nil {
		c.payer.update(s)
	}
	ttl = time.Duration(s.TTL) * time.Second
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	return s, ttl, n, gen, nil
}
