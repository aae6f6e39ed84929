package siteclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/api"
)

// Config configures a Client. Gateway is required.
type Config struct {
	// Gateway is the gateway's own base URL, e.g. http://127.0.0.1:8080.
	Gateway string
	// Token is sent as a bearer token: a site's deploy token or the admin
	// token.
	Token string
	// Sign, when set, authorizes each request instead of Token: a node
	// reading its own earnings signs the request with its node key
	// (nodeproto.SignContentRequest).
	Sign func(*http.Request)
	// HTTP makes the requests. Default: an http.Client without overall
	// timeout (uploads may be long; pass a ctx to bound calls).
	HTTP *http.Client
	// Retries is how many times Deploy sends a rewindable upload again,
	// and Site asks again, when the gateway answers 429, 502, 503 or 504
	// (a gateway restarting, or its state store electing a leader).
	// Default 3; negative: none.
	Retries int
	// RetryWait is the wait before the first retry, doubled before each
	// next one. Default 1 s.
	RetryWait time.Duration
	// OnRetry, when set, is told of each retry before its wait.
	OnRetry func(err error, wait time.Duration)
}

// Client talks to one gateway's site API.
type Client struct{ cfg Config }

// New returns a Client.
func New(cfg Config) *Client {
	cfg.Gateway = strings.TrimRight(cfg.Gateway, "/")
	switch {
	case cfg.Retries == 0:
		cfg.Retries = 3
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	return &Client{cfg: cfg}
}

// APIError is an error answered by the gateway.
type APIError struct {
	Status  int    // HTTP status
	Message string // the gateway's message
	Code    string // carcheck code for a refused CAR
	CID     string // the offending block
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("gateway: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	if e.CID != "" && !strings.Contains(e.Message, e.CID) {
		s += " (block " + e.CID + ")"
	}
	return s
}

// ErrNotPublished: WaitPublished ended before the site served the root.
var ErrNotPublished = errors.New("siteclient: not published")

// newRequest is a request to the gateway's path carrying the token.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Gateway+path, body)
	if err != nil {
		return nil, err
	}
	switch {
	case c.cfg.Sign != nil:
		c.cfg.Sign(req)
	case c.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return req, nil
}

// apiError decodes an error answer body.
func apiError(status int, b []byte) *APIError {
	var e api.Error
	ae := &APIError{Status: status, Message: strings.TrimSpace(string(b))}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		ae.Message, ae.Code, ae.CID = e.Error, e.Code, e.CID
	}
	return ae
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.doRequest(req, out)
}

// doRequest sends req and decodes a JSON answer into out.
func (c *Client) doRequest(req *http.Request, out any) error {
	method, path := req.Method, req.URL.Path
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return apiError(resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("siteclient: %s %s: %w", method, path, err)
		}
	}
	return nil
}

func jsonBody(v any) (io.Reader, int64) {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b), int64(len(b))
}

// CreateSite registers a site (admin token) and returns its deploy token.
func (c *Client) CreateSite(ctx context.Context, name string) (string, error) {
	return c.CreateSiteFor(ctx, name, "")
}

// CreateSiteFor registers a site that belongs to account (admin token;
// empty: none) and returns its deploy token.
func (c *Client) CreateSiteFor(ctx context.Context, name, account string) (string, error) {
	body, n := jsonBody(api.CreateSite{Name: name, Account: account})
	var out api.SiteCreated
	if err := c.do(ctx, http.MethodPost, "/v1/sites", body, n, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}

// List returns every site (admin token).
func (c *Client) List(ctx context.Context) ([]api.SiteStatus, error) {
	var out api.SiteList
	err := c.do(ctx, http.MethodGet, "/v1/sites", nil, -1, &out)
	return out.Sites, err
}

// Site returns a site's published record and latest deploy.
func (c *Client) Site(ctx context.Context, name string) (api.SiteStatus, error) {
	var out api.SiteStatus
	err := c.retry(ctx, func() error {
		return c.do(ctx, http.MethodGet, "/v1/sites/"+name, nil, -1, &out)
	})
	return out, err
}

// Rollback points the site back at root (empty: the previous root).
func (c *Client) Rollback(ctx context.Context, name, root string) (api.SiteRecord, error) {
	body, n := jsonBody(api.Rollback{Root: root})
	var out api.SiteRecord
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+name+"/rollback", body, n, &out)
	return out, err
}

// Deploy uploads a CAR of size bytes from r. progress, when set, is called
// with the bytes sent so far as the upload proceeds.
func (c *Client) Deploy(ctx context.Context, name string, r io.Reader, size int64, progress func(sent int64)) (api.DeployRecord, error) {
	return c.DeployFor(ctx, name, "", r, size, progress)
}

// DeployFor is Deploy charging the site to account (empty: the deploy
// token's account, else the site's, else "default" when it exists).
func (c *Client) DeployFor(ctx context.Context, name, account string, r io.Reader, size int64, progress func(sent int64)) (api.DeployRecord, error) {
	if progress != nil {
		r = &countingReader{r: r, fn: progress}
	}
	path := "/v1/sites/" + name + "/deploy"
	if account != "" {
		path += "?account=" + url.QueryEscape(account)
	}
	var out api.DeployRecord
	err := c.upload(ctx, path, r, size, &out)
	return out, err
}

// DeployPreview uploads a CAR as a preview of the site, kept for ttl (0:
// the gateway's default), without publishing it. The answer's URL is the
// preview's origin.
func (c *Client) DeployPreview(ctx context.Context, name, account string, ttl time.Duration, r io.Reader, size int64, progress func(sent int64)) (api.PreviewRecord, error) {
	if progress != nil {
		r = &countingReader{r: r, fn: progress}
	}
	q := url.Values{"preview": {"1"}}
	if account != "" {
		q.Set("account", account)
	}
	if ttl > 0 {
		q.Set("ttl", ttl.String())
	}
	var out api.PreviewRecord
	err := c.upload(ctx, "/v1/sites/"+name+"/deploy?"+q.Encode(), r, size, &out)
	return out, err
}

// Preview returns the site's preview of root, with how many live nodes
// hold it.
func (c *Client) Preview(ctx context.Context, name, root string) (api.PreviewRecord, error) {
	var out api.PreviewRecord
	err := c.do(ctx, http.MethodGet, "/v1/sites/"+name+"/previews/"+url.PathEscape(root), nil, -1, &out)
	return out, err
}

// WaitPreviewPinned polls the site's preview of root every interval until
// its replicas hold it, and returns it then.
func (c *Client) WaitPreviewPinned(ctx context.Context, name, root string, interval time.Duration) (api.PreviewRecord, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := c.Preview(ctx, name, root)
		if err == nil && p.Pinned >= p.Replicas {
			return p, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d of %d nodes hold the preview %s: %w", p.Pinned, p.Replicas, root, ctx.Err())
			}
			return p, err
		case <-t.C:
		}
	}
}

// Promote publishes the site's preview of root.
func (c *Client) Promote(ctx context.Context, name, root string) (api.SiteRecord, error) {
	body, n := jsonBody(api.Promote{Root: root})
	var out api.SiteRecord
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+name+"/promote", body, n, &out)
	return out, err
}

// FollowBucket makes site name follow S3 bucket (of the site's account):
// it is published at the bucket's root, and again at each change.
func (c *Client) FollowBucket(ctx context.Context, name, bucket string) (api.DeployRecord, error) {
	body, n := jsonBody(api.FollowBucket{Bucket: bucket})
	var out api.DeployRecord
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+name+"/bucket", body, n, &out)
	return out, err
}

// upload POSTs the CAR in r to path, sending it again (from where r
// started) while the gateway answers that it is busy.
func (c *Client) upload(ctx context.Context, path string, r io.Reader, size int64, out any) error {
	rs, rewindable := r.(io.ReadSeeker)
	if cr, ok := r.(*countingReader); ok {
		rs, rewindable = cr.r.(io.ReadSeeker)
	}
	var start int64
	if rewindable {
		var err error
		if start, err = rs.Seek(0, io.SeekCurrent); err != nil {
			rewindable = false
		}
	}
	if !rewindable {
		return c.do(ctx, http.MethodPost, path, io.NopCloser(r), size, out)
	}
	first := true
	return c.retry(ctx, func() error {
		if !first {
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return err
			}
			if cr, ok := r.(*countingReader); ok {
				cr.n = 0
			}
		}
		first = false
		return c.do(ctx, http.MethodPost, path, io.NopCloser(r), size, out)
	})
}

// retry runs call, and again after a wait (RetryWait, doubled each time)
// while it fails with an answer that says the gateway is busy or could
// not reach its state store, at most Retries times.
func (c *Client) retry(ctx context.Context, call func() error) error {
	wait := c.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		err := call()
		if err == nil || attempt >= c.cfg.Retries || !retryable(err) {
			return err
		}
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(err, wait)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// retryable reports whether a deploy may be sent again: the gateway
// answered that it is busy or could not reach its state store, so nothing
// was published. Everything else (a refused CAR, a wrong token) is final.
func retryable(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// WaitPublished polls the site every interval until it serves root, and
// returns its status then. It fails with ErrNotPublished when ctx ends.
func (c *Client) WaitPublished(ctx context.Context, name, root string, interval time.Duration) (api.SiteStatus, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := c.Site(ctx, name)
		if err != nil && ctx.Err() == nil {
			return st, err
		}
		if err == nil && st.Site != nil && st.Site.Root == root {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%w: %s is still %s", ErrNotPublished, name, describe(st, root))
		case <-t.C:
		}
	}
}

func describe(st api.SiteStatus, root string) string {
	if st.Deploy != nil && st.Deploy.Root == root {
		return "waiting for " + fmt.Sprint(st.Deploy.Replicas) + " nodes to hold it (" + st.Deploy.State + ")"
	}
	return "on another root"
}

type countingReader struct {
	r    io.Reader
	n    int64
	fn   func(int64)
	last time.Time
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); err != nil || now.Sub(c.last) >= 100*time.Millisecond {
		c.last = now
		c.fn(c.n)
	}
	return n, err
}
