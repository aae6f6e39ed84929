package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors the gateway returns or maps to HTTP status codes (see statusOf).
var (
	// ErrUnknownSite: the host names no site (404).
	ErrUnknownSite = errors.New("unknown site")
	// ErrNotFound: the path does not exist under the site's root (404).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: a malformed path, CID or query, or a path of more
	// than MaxPathSegments segments (400).
	ErrBadRequest = errors.New("bad request")
	// ErrURITooLong: a request target (path and query) over
	// MaxRequestURIBytes (414).
	ErrURITooLong = errors.New("request URI too long")
	// ErrForbidden: a CID that does not belong to the site (403).
	ErrForbidden = errors.New("forbidden")
	// ErrMethod: a method the path does not allow (405).
	ErrMethod = errors.New("method not allowed")
	// ErrTooLarge: a request body or entity over its limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrNoNode: no node could serve the content (502).
	ErrNoNode = errors.New("no node could serve the content")
	// ErrDNSLink: a custom domain's DNSLink lookup failed (502); a domain
	// without a record is ErrUnknownSite.
	ErrDNSLink = errors.New("custom domain lookup failed")
	// ErrTimeout: nodes did not answer in time (504).
	ErrTimeout = errors.New("node timeout")
	// ErrInvalidSiteName: a site name that is not a DNS label (400); the
	// error is a *SiteNameError saying why.
	ErrInvalidSiteName = errors.New("invalid site name")
	// ErrConfig: an invalid Config passed to New.
	ErrConfig = errors.New("invalid gateway config")
	// ErrRateLimited: too many requests from one client (429).
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the node cannot take the request now (503).
	ErrUnavailable = errors.New("node unavailable")
	// ErrMeteringOff: FlushCharges on a gateway without Config.Charges.
	ErrMeteringOff = errors.New("the gateway meters nothing (no Config.Charges)")
	// ErrSiteRules: the site's _redirects or _headers file cannot be
	// read or parsed (500, with the line at fault).
	ErrSiteRules = errors.New("the site's _redirects or _headers file is invalid")
	// ErrPaymentRequired: the site's account has run out of credit: its
	// balance is below -Config.CreditLimit (402).
	ErrPaymentRequired = errors.New("payment required")
)

// RequestError is a client error with a message for the response body.
type RequestError struct {
	Kind   error  // one of the Err* sentinels
	Detail string // human-readable, safe to show to clients
}

func (e *RequestError) Error() string { return e.Kind.Error() + ": " + e.Detail }

// Unwrap returns the sentinel.
func (e *RequestError) Unwrap() error { return e.Kind }

func badRequest(format string, args ...any) error {
	return &RequestError{Kind: ErrBadRequest, Detail: fmt.Sprintf(format, args...)}
}

// NodeError is the failure of one node on one request.
type NodeError struct {
	Node   string // node ID
	Reason string // metric label: status, verify, unreachable, timeout
	Err    error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %s: %s: %v", e.Node, e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }

// SiteNameError says why a site name is invalid.
type SiteNameError struct {
	Name   string
	Reason string
}

func (e *SiteNameError) Error() string {
	return fmt.Sprintf("invalid site name %q: %s (a site name is %s)", clip(e.Name), e.Reason, SiteNameRule)
}

// Unwrap returns ErrInvalidSiteName.
func (e *SiteNameError) Unwrap() error { return ErrInvalidSiteName }

func configError(detail string) error { return fmt.Errorf("%w: %s", ErrConfig, detail) }

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// statusOf maps an error to the HTTP status the gateway answers with.
func statusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrUnknownSite), errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrPaymentRequired):
		return http.StatusPaymentRequired
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrInvalidSiteName):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrURITooLong):
		return http.StatusRequestURITooLong
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrNoNode), errors.Is(err, ErrDNSLink):
		return http.StatusBadGateway
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorMessage is the text sent to clients for err: the detail of a
// RequestError, else the sentinel's text (internal details stay in logs).
func errorMessage(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Error()
	}
	var ne *SiteNameError
	if errors.As(err, &ne) {
		return ne.Error()
	}
	for _, s := range []error{ErrPaymentRequired, ErrUnknownSite, ErrNotFound, ErrForbidden, ErrMethod, ErrTooLarge, ErrURITooLong, ErrTimeout, ErrNoNode, ErrDNSLink, ErrRateLimited, ErrUnavailable} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return http.StatusText(statusOf(err))
}
