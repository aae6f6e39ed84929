package siteclient

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/ledger"
)

// CreateAccount creates an account (admin token). freezeBelow 0 is the
// ledger's default threshold.
func (c *Client) CreateAccount(ctx context.Context, name string, freezeBelow int64) (ledger.Account, error) {
	body, n := jsonBody(map[string]any{"name": name, "freezeBelow": freezeBelow})
	var out ledger.Account
	err := c.do(ctx, http.MethodPost, "/v1/accounts", body, n, &out)
	return out, err
}

// TopUp credits bytes to an account through the gateway's development
// faucet (admin token; the gateway must run with --faucet).
func (c *Client) TopUp(ctx context.Context, name string, bytes uint64) (ledger.Account, error) {
	body, n := jsonBody(map[string]uint64{"bytes": bytes})
	var out ledger.Account
	err := c.do(ctx, http.MethodPost, "/v1/accounts/"+url.PathEscape(name)+"/topup", body, n, &out)
	return out, err
}

// Account returns an account's balance and totals (admin token).
func (c *Client) Account(ctx context.Context, name string) (ledger.Account, error) {
	var out ledger.Account
	err := c.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(name), nil, -1, &out)
	return out, err
}

// Accounts lists every account (admin token).
func (c *Client) Accounts(ctx context.Context) ([]ledger.Account, error) {
	var out struct {
		Accounts []ledger.Account `json:"accounts"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/accounts", nil, -1, &out)
	return out.Accounts, err
}

// Statement returns an account's statement entries (admin token): those
// at or after since (zero: all kept), of typ (empty: all), the newest
// limit (0: the gateway's default).
func (c *Client) Statement(ctx context.Context, name string, since time.Time, typ string, limit int) (gateway.AccountStatement, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if typ != "" {
		q.Set("type", typ)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/accounts/" + url.PathEscape(name) + "/statement"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out gateway.AccountStatement
	err := c.do(ctx, http.MethodGet, path, nil, -1, &out)
	return out, err
}

// Dashboard returns an account's spend by site and node (admin token).
func (c *Client) Dashboard(ctx context.Context, name string) (ledger.Dashboard, error) {
	var out ledger.Dashboard
	err := c.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(name)+"/dashboard", nil, -1, &out)
	return out, err
}

// Earnings returns what the ledger credited a node: with the admin token,
// or, when key is set, signed with that node key (a node reads its own).
func (c *Client) Earnings(ctx context.Context, node string, key ed25519.PrivateKey) (ledger.Earnings, error) {
	path := "/v1/nodes/" + url.PathEscape(node) + "/earnings"
	var out ledger.Earnings
	if key == nil {
		err := c.do(ctx, http.MethodGet, path, nil, -1, &out)
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Gateway+path, nil)
	if err != nil {
		return out, err
	}
	coordinator.SignContentRequest(req, key, time.Now())
	err = c.doRequest(req, &out)
	return out, err
}
