package siteclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/verity-cdn/verity/internal/api"
)

// CreateS3Key makes an S3 access key for account and returns it with its
// secret, shown only this once (the admin token, or with site the deploy
// token of a site of that account).
func (c *Client) CreateS3Key(ctx context.Context, account, site string) (api.S3Key, error) {
	body, n := jsonBody(api.CreateS3Key{Account: account, Site: site})
	var out api.S3Key
	err := c.do(ctx, http.MethodPost, "/v1/keys", body, n, &out)
	return out, err
}

// S3Keys lists account's access keys, without secrets.
func (c *Client) S3Keys(ctx context.Context, account, site string) ([]api.S3Key, error) {
	q := url.Values{"account": {account}}
	if site != "" {
		q.Set("site", site)
	}
	var out api.S3KeyList
	err := c.do(ctx, http.MethodGet, "/v1/keys?"+q.Encode(), nil, -1, &out)
	return out.Keys, err
}

// RevokeS3Key deletes access key id.
func (c *Client) RevokeS3Key(ctx context.Context, id, site string) error {
	path := "/v1/keys/" + url.PathEscape(id)
	if site != "" {
		path += "?" + url.Values{"site": {site}}.Encode()
	}
	return c.do(ctx, http.MethodDelete, path, nil, -1, nil)
}
