//go:build !js

package wasmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/verity-cdn/verity/internal/wire"
)

// HTTPTransport fetches CARs over HTTP from a node's trustless gateway
// (Node.HTTP + target) or, for the gateway fallback, from Origin + the
// fallback path. It is the native twin of the worker's fetch transport.
type HTTPTransport struct {
	// TransportName is what Name returns (default "gateway").
	TransportName string
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
	// Origin resolves node addresses that are paths ("/.verity/v1").
	Origin string
}

var _ Transport = (*HTTPTransport)(nil)

// Name implements Transport.
func (t *HTTPTransport) Name() string {
	if t.TransportName == "" {
		return TransportGateway
	}
	return t.TransportName
}

// Open implements Transport.
func (t *HTTPTransport) Open(ctx context.Context, node Node, target string) (io.ReadCloser, error) {
	base := node.HTTP
	if base == "" {
		return nil, ErrNoAddress
	}
	if strings.HasPrefix(base, "/") {
		base = strings.TrimSuffix(t.Origin, "/") + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", CARAccept)
	resp, err := t.client().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		return nil, &wire.StatusError{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	return resp.Body, nil
}

func (t *HTTPTransport) client() *http.Client { return orDefault(t.Client) }

// orDefault is c, or http.DefaultClient when c is nil.
func orDefault(c *http.Client) *http.Client {
	if c == nil {
		return http.DefaultClient
	}
	return c
}

// HTTPSessionLoader loads the session from Origin + SessionPath.
type HTTPSessionLoader struct {
	Origin string
	Client *http.Client
}

var _ SessionLoader = (*HTTPSessionLoader)(nil)

var _ KeyedSessionLoader = (*HTTPSessionLoader)(nil)

// LoadSession implements SessionLoader.
func (l *HTTPSessionLoader) LoadSession(ctx context.Context) (*Session, error) {
	return l.LoadSessionKey(ctx, "")
}

// LoadSessionKey implements KeyedSessionLoader.
func (l *HTTPSessionLoader) LoadSessionKey(ctx context.Context, key string) (*Session, error) {
	u := strings.TrimSuffix(l.Origin, "/") + SessionPath
	if key != "" {
		u += "?key=" + key
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := orDefault(l.Client).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: status %d", ErrSession, resp.StatusCode)
	}
	return ParseSession(data)
}

// HTTPReporter posts reports to Origin + ReportPath.
type HTTPReporter struct {
	Origin string
	Client *http.Client
}

var _ Reporter = (*HTTPReporter)(nil)

// Report implements Reporter.
func (r *HTTPReporter) Report(ctx context.Context, rep Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return post(ctx, r.Client, strings.TrimSuffix(r.Origin, "/")+ReportPath, "application/json", body)
}

// post sends body to url and wants a 2xx answer, whose body it discards.
func post(ctx context.Context, c *http.Client, url, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := orDefault(c).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &wire.StatusError{Status: resp.StatusCode}
	}
	return nil
}

// HTTPScoreReporter posts the scores document to Origin + ScoresPath.
type HTTPScoreReporter struct {
	Origin string
	Client *http.Client
}

var _ ScoreReporter = (*HTTPScoreReporter)(nil)

// ReportScores implements ScoreReporter.
func (r *HTTPScoreReporter) ReportScores(ctx context.Context, doc []byte) error {
	return post(ctx, r.Client, strings.TrimSuffix(r.Origin, "/")+ScoresPath, "text/plain", doc)
}
