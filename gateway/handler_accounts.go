package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/payment"
)

// AccountStatement is the answer of GET /v1/accounts/{name}/statement.
type AccountStatement struct {
	Account string                  `json:"account"`
	Entries []ledger.StatementEntry `json:"entries"`
}

// routeAccounts adds the accounts API to mux.
func (g *Gateway) routeAccounts(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/accounts", g.apiCreateAccount)
	mux.HandleFunc("GET /v1/accounts", g.apiListAccounts)
	mux.HandleFunc("GET /v1/accounts/{name}", g.apiGetAccount)
	mux.HandleFunc("POST /v1/accounts/{name}/topup", g.apiTopUp)
	mux.HandleFunc("GET /v1/accounts/{name}/statement", g.apiStatement)
	mux.HandleFunc("GET /v1/accounts/{name}/dashboard", g.apiDashboard)
	mux.HandleFunc("GET /v1/nodes/{id}/earnings", g.apiEarnings)
}

// adminAccounts checks the accounts API is on and r carries the admin
// token; it answers the error itself and returns false when r cannot go on.
func (g *Gateway) adminAccounts(w http.ResponseWriter, r *http.Request) bool {
	if g.ledger == nil {
		g.apiFail(w, r, ErrAccountsOff)
		return false
	}
	if err := g.authorizeAdmin(r); err != nil {
		g.apiFail(w, r, err)
		return false
	}
	return true
}

// accountRequest is adminAccounts plus a valid {name}.
func (g *Gateway) accountRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !g.adminAccounts(w, r) {
		return "", false
	}
	name := r.PathValue("name")
	if !payment.ValidAccount(name) {
		g.apiFail(w, r, badAccountName(name))
		return "", false
	}
	return name, true
}

func badAccountName(name string) error {
	return badRequest("invalid account name %q: use 1 to 64 of a-z, 0-9, '.', '_' and '-'", clip(name))
}

func (g *Gateway) apiCreateAccount(w http.ResponseWriter, r *http.Request) {
	if !g.adminAccounts(w, r) {
		return
	}
	var req struct {
		Name        string `json:"name"`
		FreezeBelow int64  `json:"freezeBelow"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		g.apiFail(w, r, badRequest("body: want {\"name\": \"...\", \"freezeBelow\": bytes}: %v", err))
		return
	}
	if !payment.ValidAccount(req.Name) {
		g.apiFail(w, r, badAccountName(req.Name))
		return
	}
	if req.FreezeBelow < 0 {
		g.apiFail(w, r, badRequest("freezeBelow %d: want bytes ≥ 0 (0: the default)", req.FreezeBelow))
		return
	}
	a, err := g.ledger.CreateAccount(r.Context(), req.Name, req.FreezeBelow)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	g.log.Info("account created", "account", a.Name, "freezeBelow", a.FreezeBelow)
	writeJSON(w, http.StatusCreated, a)
}

func (g *Gateway) apiListAccounts(w http.ResponseWriter, r *http.Request) {
	if !g.adminAccounts(w, r) {
		return
	}
	names, err := g.ledger.Accounts(r.Context())
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	out := make([]ledger.Account, 0, len(names))
	for _, n := range names {
		a, err := g.ledger.Account(r.Context(), n)
		if err != nil {
			g.apiFail(w, r, err)
			return
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
}

func (g *Gateway) apiGetAccount(w http.ResponseWriter, r *http.Request) {
	name, ok := g.accountRequest(w, r)
	if !ok {
		return
	}
	a, err := g.ledger.Account(r.Context(), name)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// maxTopUp bounds one faucet top-up: 1 PiB.
const maxTopUp = 1 << 50

func (g *Gateway) apiTopUp(w http.ResponseWriter, r *http.Request) {
	name, ok := g.accountRequest(w, r)
	if !ok {
		return
	}
	if !g.cfg.Faucet {
		g.apiFail(w, r, ErrFaucetOff)
		return
	}
	var req struct {
		Bytes uint64 `json:"bytes"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		g.apiFail(w, r, badRequest("body: want {\"bytes\": n}: %v", err))
		return
	}
	if req.Bytes == 0 || req.Bytes > maxTopUp {
		g.apiFail(w, r, badRequest("bytes %d: want 1 to %d", req.Bytes, uint64(maxTopUp)))
		return
	}
	a, err := g.ledger.TopUp(r.Context(), name, req.Bytes)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	g.log.Info("account topped up (faucet)", "account", name, "bytes", req.Bytes, "balance", a.Balance)
	writeJSON(w, http.StatusOK, a)
}

func (g *Gateway) apiStatement(w http.ResponseWriter, r *http.Request) {
	name, ok := g.accountRequest(w, r)
	if !ok {
		return
	}
	q := ledger.StatementQuery{Limit: 1000}
	v := r.URL.Query()
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			g.apiFail(w, r, badRequest("since %q: want an RFC 3339 time", clip(s)))
			return
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			g.apiFail(w, r, badRequest("limit %q: want 1 to 10000", clip(s)))
			return
		}
		q.Limit = n
	}
	switch t := v.Get("type"); t {
	case "", ledger.EntryCreate, ledger.EntryTopUp, ledger.EntrySettle, ledger.EntryCharge:
		q.Type = t
	default:
		g.apiFail(w, r, badRequest("type %q: want create, topup, settle or charge", clip(t)))
		return
	}
	entries, err := g.ledger.Statement(r.Context(), name, q)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AccountStatement{Account: name, Entries: entries})
}

func (g *Gateway) apiDashboard(w http.ResponseWriter, r *http.Request) {
	name, ok := g.accountRequest(w, r)
	if !ok {
		return
	}
	d, err := g.ledger.Dashboard(r.Context(), name)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// apiEarnings answers a node's earnings to the admin, or to the node
// itself (a request signed with its node key, as content fetches are).
func (g *Gateway) apiEarnings(w http.ResponseWriter, r *http.Request) {
	if g.ledger == nil {
		g.apiFail(w, r, ErrAccountsOff)
		return
	}
	id := r.PathValue("id")
	if _, err := payment.ParseNodeID(id); err != nil {
		g.apiFail(w, r, badRequest("invalid node id %q", clip(id)))
		return
	}
	if bearer(r) == "" && r.Header.Get("Authorization") != "" && g.coord != nil {
		node, err := g.coord.AuthenticateNode(r)
		if err != nil {
			g.apiFail(w, r, &RequestError{Kind: ErrForbidden, Detail: err.Error()})
			return
		}
		if node != id {
			g.apiFail(w, r, &RequestError{Kind: ErrForbidden, Detail: "a node may read only its own earnings"})
			return
		}
	} else if err := g.authorizeAdmin(r); err != nil {
		g.apiFail(w, r, err)
		return
	}
	e, err := g.ledger.Earnings(r.Context(), id)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}
