package siteclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/verity-cdn/verity/internal/api"
)

// CreateOperator creates a node operator and returns its credential,
// shown only this once (admin token).
func (c *Client) CreateOperator(ctx context.Context, name string) (string, error) {
	body, n := jsonBody(api.CreateOperator{Name: name})
	var out api.OperatorCreated
	err := c.do(ctx, http.MethodPost, "/v1/operators", body, n, &out)
	return out.Token, err
}

// Operators lists the node operators (admin token).
func (c *Client) Operators(ctx context.Context) ([]api.Operator, error) {
	var out api.OperatorList
	err := c.do(ctx, http.MethodGet, "/v1/operators", nil, -1, &out)
	return out.Operators, err
}

// RevokeOperator revokes a node operator's credential; its nodes are
// disconnected (admin token).
func (c *Client) RevokeOperator(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/operators/"+url.PathEscape(name), nil, -1, nil)
}
