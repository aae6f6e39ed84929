package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/ledger"
)

// Errors the control plane returns or maps to HTTP status codes (see
// statusOf). Besides these: gateway.ErrUnknownSite (404),
// gateway.ErrInvalidSiteName (400, a *gateway.SiteNameError), the
// ledger's account errors and carcheck's refusals.
var (
	// ErrNotFound: no such path, or no CAR for a root here (404).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: a malformed body, name, CID or query (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: a request without a bearer token (401).
	ErrUnauthorized = errors.New("missing token")
	// ErrForbidden: a token (or node signature) that does not authorize
	// the request (403).
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge: a deploy over MaxDeployBytes (413).
	ErrTooLarge = errors.New("too large")
	// ErrSiteExists: creating a site that already has a deploy token (409).
	ErrSiteExists = errors.New("site already exists")
	// ErrConflict: a request the current state does not allow, such as a
	// webhook beyond MaxWebhooks (409).
	ErrConflict = errors.New("conflict")
	// ErrNotInHistory: a rollback to a root the site never had (404).
	ErrNotInHistory = errors.New("not in the site's history")
	// ErrFaucetOff: a top-up without the development faucet (403).
	ErrFaucetOff = errors.New("top-ups are a development faucet, not enabled on this gateway (start it with --faucet)")
	// ErrTooManyRequests: a costly read (a history) beyond what one
	// credential, or the gateway, answers at once (429, with Retry-After).
	ErrTooManyRequests = errors.New("too many requests")
	// ErrConfig: an invalid Config passed to New.
	ErrConfig = errors.New("invalid control config")
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

func configError(detail string) error { return fmt.Errorf("%w: %s", ErrConfig, detail) }

// statusOf maps an error to the HTTP status the API answers with.
func statusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, gateway.ErrUnknownSite), errors.Is(err, ErrNotFound), errors.Is(err, ErrNotInHistory),
		errors.Is(err, ledger.ErrUnknownAccount), errors.Is(err, coordinator.ErrUnknownOperator):
		return http.StatusNotFound
	case errors.Is(err, ErrFaucetOff):
		return http.StatusForbidden
	case errors.Is(err, ledger.ErrInvalidAccount), errors.Is(err, ledger.ErrInvalidCharge), errors.Is(err, ledger.ErrInvalidAmount):
		return http.StatusBadRequest
	case errors.Is(err, coordinator.ErrOperatorName):
		return http.StatusBadRequest
	case errors.Is(err, ledger.ErrAccountExists), errors.Is(err, ErrSiteExists), errors.Is(err, coordinator.ErrOperatorExists),
		errors.Is(err, ErrDomainTaken), errors.Is(err, ErrDomainUnproven), errors.Is(err, ErrNotReplicated),
		errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, carcheck.ErrInvalid):
		var ce *carcheck.Error
		if errors.As(err, &ce) && (ce.Code == carcheck.CodeMalformed || ce.Code == carcheck.CodeRoots || ce.Code == carcheck.CodeDuplicate) {
			return http.StatusBadRequest
		}
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrBadRequest), errors.Is(err, gateway.ErrInvalidSiteName):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrTooManyRequests):
		return http.StatusTooManyRequests
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// fail answers err as an api.Error with the status statusOf maps it to:
// the error's text below 500, the status text from 500 on (the details
// stay in the log).
func (c *Control) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	body := api.Error{Error: http.StatusText(code)}
	if code < 500 {
		body.Error = err.Error()
	}
	var ce *carcheck.Error
	if errors.As(err, &ce) {
		body.Code, body.CID = ce.Code, ce.CID
	}
	if code >= 500 {
		c.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	} else {
		c.log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="verity"`)
	}
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
