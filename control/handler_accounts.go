package control

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/payment"
)

// adminAccounts checks r carries the admin token; it answers the error
// itself and returns false when r cannot go on.
func (c *Control) adminAccounts(w http.ResponseWriter, r *http.Request) bool {
	if err := c.authorizeAdmin(r); err != nil {
		c.fail(w, r, err)
		return false
	}
	return true
}

// accountRequest is adminAccounts plus a valid {name}.
func (c *Control) accountRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !c.adminAccounts(w, r) {
		return "", false
	}
	name := r.PathValue("name")
	if !payment.ValidAccount(name) {
		c.fail(w, r, badAccountName(name))
		return "", false
	}
	return name, true
}

// accountRead is accountRequest for the reads a site's owner may make
// of its own account too (authorizeAccount).
func (c *Control) accountRead(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !payment.ValidAccount(name) {
		c.fail(w, r, badAccountName(name))
		return "", false
	}
	if err := c.authorizeAccount(r, name); err != nil {
		c.fail(w, r, err)
		return "", false
	}
	return name, true
}

func badAccountName(name string) error {
	return badRequest("invalid account name %q: use 1 to 64 of a-z, 0-9, '.', '_' and '-'", clip(name))
}

func (c *Control) apiCreateAccount(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	var req api.CreateAccount
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"name\": \"...\", \"freezeBelow\": bytes}: %v", err))
		return
	}
	if !payment.ValidAccount(req.Name) {
		c.fail(w, r, badAccountName(req.Name))
		return
	}
	if req.FreezeBelow < 0 {
		c.fail(w, r, badRequest("freezeBelow %d: want bytes ≥ 0 (0: the default)", req.FreezeBelow))
		return
	}
	a, err := c.ledger.CreateAccount(r.Context(), req.Name, req.FreezeBelow)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("account created", "account", a.Name, "freezeBelow", a.FreezeBelow)
	writeJSON(w, http.StatusCreated, accountOf(a))
}

func (c *Control) apiListAccounts(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	names, err := c.ledger.Accounts(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := api.AccountList{Accounts: make([]api.Account, 0, len(names))}
	for _, n := range names {
		a, err := c.ledger.Account(r.Context(), n)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out.Accounts = append(out.Accounts, accountOf(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) apiGetAccount(w http.ResponseWriter, r *http.Request) {
	name, ok := c.accountRead(w, r)
	if !ok {
		return
	}
	a, err := c.ledger.Account(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, accountOf(a))
}

// maxTopUp bounds one faucet top-up: 1 PiB.
const maxTopUp = 1 << 50

func (c *Control) apiTopUp(w http.ResponseWriter, r *http.Request) {
	name, ok := c.accountRequest(w, r)
	if !ok {
		return
	}
	if !c.cfg.Faucet {
		c.fail(w, r, ErrFaucetOff)
		return
	}
	var req api.TopUp
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"bytes\": n}: %v", err))
		return
	}
	if req.Bytes == 0 || req.Bytes > maxTopUp {
		c.fail(w, r, badRequest("bytes %d: want 1 to %d", req.Bytes, uint64(maxTopUp)))
		return
	}
	a, err := c.ledger.TopUp(r.Context(), name, req.Bytes)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("account topped up (faucet)", "account", name, "bytes", req.Bytes, "balance", a.Balance)
	writeJSON(w, http.StatusOK, accountOf(a))
}

func (c *Control) apiStatement(w http.ResponseWriter, r *http.Request) {
	name, ok := c.accountRead(w, r)
	if !ok {
		return
	}
	q := ledger.StatementQuery{Limit: 1000}
	v := r.URL.Query()
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			c.fail(w, r, badRequest("since %q: want an RFC 3339 time", clip(s)))
			return
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			c.fail(w, r, badRequest("limit %q: want 1 to 10000", clip(s)))
			return
		}
		q.Limit = n
	}
	switch t := v.Get("type"); t {
	case "", ledger.EntryCreate, ledger.EntryTopUp, ledger.EntrySettle, ledger.EntryCharge:
		q.Type = t
	default:
		c.fail(w, r, badRequest("type %q: want create, topup, settle or charge", clip(t)))
		return
	}
	entries, err := c.ledger.Statement(r.Context(), name, q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Statement{Account: name, Entries: entriesOf(entries)})
}

func (c *Control) apiDashboard(w http.ResponseWriter, r *http.Request) {
	name, ok := c.accountRead(w, r)
	if !ok {
		return
	}
	d, err := c.ledger.Dashboard(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, dashboardOf(d))
}

// apiEarnings answers a node's earnings to the admin, or to the node
// itself (a request signed with its node key, as content fetches are).
func (c *Control) apiEarnings(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := payment.ParseNodeID(id); err != nil {
		c.fail(w, r, badRequest("invalid node id %q", clip(id)))
		return
	}
	if bearer(r) == "" && r.Header.Get("Authorization") != "" {
		node, err := c.coord.AuthenticateNode(r)
		if err != nil {
			c.fail(w, r, &RequestError{Kind: ErrForbidden, Detail: err.Error()})
			return
		}
		if node != id {
			c.fail(w, r, &RequestError{Kind: ErrForbidden, Detail: "a node may read only its own earnings"})
			return
		}
	} else if err := c.authorizeNode(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	e, err := c.ledger.Earnings(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Earnings(e))
}

// The ledger's records as the API shows them. The API's documents are
// declared apart from the ledger's (internal/api is imported by clients
// that must not link the ledger); the fields are the same, so these are
// plain conversions.

func accountOf(a ledger.Account) api.Account { return api.Account(a) }

func entriesOf(es []ledger.StatementEntry) []api.StatementEntry {
	if es == nil {
		return nil
	}
	out := make([]api.StatementEntry, len(es))
	for i, e := range es {
		out[i] = api.StatementEntry(e)
	}
	return out
}

func dashboardOf(d ledger.Dashboard) api.Dashboard {
	out := api.Dashboard{
		Account: accountOf(d.Account),
		Spend:   api.Spend(d.Spend),
		Nodes:   d.Nodes,
		TopUps:  entriesOf(d.TopUps),
	}
	if d.Sites != nil {
		out.Sites = make(map[string]api.SiteSpend, len(d.Sites))
		for k, v := range d.Sites {
			out.Sites[k] = api.SiteSpend(v)
		}
	}
	return out
}
