package siteclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/verity-cdn/verity/internal/api"
)

// AttachDomain attaches a custom domain to site, pending its ownership
// proof; the record says which TXT record or CNAME proves it.
func (c *Client) AttachDomain(ctx context.Context, site, domain string) (api.DomainRecord, error) {
	body, n := jsonBody(api.AttachDomain{Domain: domain})
	var out api.DomainRecord
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+site+"/domains", body, n, &out)
	return out, err
}

// VerifyDomain asks the gateway to look for the proof; on success the
// domain serves the site.
func (c *Client) VerifyDomain(ctx context.Context, site, domain string) (api.DomainRecord, error) {
	var out api.DomainRecord
	err := c.do(ctx, http.MethodPost, "/v1/sites/"+site+"/domains/"+url.PathEscape(domain)+"/verify", nil, -1, &out)
	return out, err
}

// Domains lists site's domains.
func (c *Client) Domains(ctx context.Context, site string) ([]api.DomainRecord, error) {
	var out []api.DomainRecord
	err := c.do(ctx, http.MethodGet, "/v1/sites/"+site+"/domains", nil, -1, &out)
	return out, err
}

// RemoveDomain detaches domain from site.
func (c *Client) RemoveDomain(ctx context.Context, site, domain string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sites/"+site+"/domains/"+url.PathEscape(domain), nil, -1, nil)
}

// Nodes lists every node of the gateway's registry (admin token).
func (c *Client) Nodes(ctx context.Context) ([]api.NodeInfo, error) {
	var out api.NodeList
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, -1, &out)
	return out.Nodes, err
}
