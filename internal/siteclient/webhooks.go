package siteclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/verity-cdn/verity/internal/api"
)

// AddWebhook registers url for site's events of the given types (none:
// all). The answer carries the endpoint's signing secret, shown only
// this once.
func (c *Client) AddWebhook(ctx context.Context, site, endpoint string, types []string) (api.Webhook, error) {
	body, n := jsonBody(api.AddWebhook{URL: endpoint, Events: types})
	var out api.Webhook
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+site+"/webhooks", body, n, &out)
	return out, err
}

// Webhooks lists site's endpoints (without their secrets).
func (c *Client) Webhooks(ctx context.Context, site string) ([]api.Webhook, error) {
	var out api.WebhookList
	err := c.do(ctx, http.MethodGet, "/v1/sites/"+site+"/webhooks", nil, -1, &out)
	return out.Webhooks, err
}

// RemoveWebhook removes an endpoint; deliveries still pending for it
// are dropped.
func (c *Client) RemoveWebhook(ctx context.Context, site, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sites/"+site+"/webhooks/"+url.PathEscape(id), nil, -1, nil)
}

// WebhookLog returns an endpoint's latest delivery attempts, newest
// first.
func (c *Client) WebhookLog(ctx context.Context, site, id string) (api.WebhookLog, error) {
	var out api.WebhookLog
	err := c.do(ctx, http.MethodGet, "/v1/sites/"+site+"/webhooks/"+url.PathEscape(id)+"/log", nil, -1, &out)
	return out, err
}

// RedeliverWebhook delivers a logged event to the endpoint again.
func (c *Client) RedeliverWebhook(ctx context.Context, site, id, event string) error {
	body, n := jsonBody(api.RedeliverWebhook{Event: event})
	return c.do(ctx, http.MethodPost, "/v1/sites/"+site+"/webhooks/"+url.PathEscape(id)+"/redeliver", body, n, nil)
}
