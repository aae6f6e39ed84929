package siteclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/internal/api"
)

// CreateAccount creates an account (admin token). freezeBelow 0 is the
// ledger's default threshold.
func (c *Client) CreateAccount(ctx context.Context, name string, freezeBelow int64) (api.Account, error) {
	body, n := jsonBody(api.CreateAccount{Name: name, FreezeBelow: freezeBelow})
	var out api.Account
	err := c.do(ctx, http.MethodPost, "/v1/accounts", body, n, &out)
	return out, err
}

// TopUp credits bytes to an account through the gateway's development
// faucet (admin token; the gateway must run with --faucet).
func (c *Client) TopUp(ctx context.Context, name string, bytes uint64) (api.Account, error) {
	body, n := jsonBody(api.TopUp{Bytes: bytes})
	var out api.Account
	err := c.do(ctx, http.MethodPost, "/v1/accounts/"+url.PathEscape(name)+"/topup", body, n, &out)
	return out, err
}

// Account returns an account's balance and totals (admin token).
func (c *Client) Account(ctx context.Context, name string) (api.Account, error) {
	var out api.Account
	err := c.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(name), nil, -1, &out)
	return out, err
}

// Accounts lists every account (admin token).
func (c *Client) Accounts(ctx context.Context) ([]api.Account, error) {
	var out api.AccountList
	err := c.do(ctx, http.MethodGet, "/v1/accounts", nil, -1, &out)
	return out.Accounts, err
}

// Statement returns an account's statement entries (admin token): those
// at or after since (zero: all kept), of typ (empty: all), the newest
// limit (0: the gateway's default).
func (c *Client) Statement(ctx context.Context, name string, since time.Time, typ string, limit int) (api.Statement, error) {
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
	var out api.Statement
	err := c.do(ctx, http.MethodGet, path, nil, -1, &out)
	return out, err
}

// Dashboard returns an account's spend by site and node (admin token).
func (c *Client) Dashboard(ctx context.Context, name string) (api.Dashboard, error) {
	var out api.Dashboard
	err := c.do(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(name)+"/dashboard", nil, -1, &out)
	return out, err
}

// Earnings returns what the ledger credited a node: with the admin
// token, or with Config.Sign set to sign with that node's key (a node
// reads its own).
func (c *Client) Earnings(ctx context.Context, node string) (api.Earnings, error) {
	var out api.Earnings
	err := c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(node)+"/earnings", nil, -1, &out)
	return out, err
}
