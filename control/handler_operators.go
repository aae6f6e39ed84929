package control

import (
	"encoding/json"
	"net/http"

	"github.com/verity-cdn/verity/internal/api"
)

// Node operators' credentials (admin token): POST /v1/operators creates
// one and answers its credential (shown only this once), GET lists them,
// DELETE /v1/operators/{name} revokes one, which disconnects its nodes.

func (c *Control) apiCreateOperator(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	var req api.CreateOperator
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"name\": \"...\"}: %v", err))
		return
	}
	tok, err := c.coord.CreateOperator(r.Context(), req.Name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.OperatorCreated{Name: req.Name, Token: tok})
}

func (c *Control) apiListOperators(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	ops, err := c.coord.Operators(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := api.OperatorList{Operators: make([]api.Operator, len(ops))}
	for i, o := range ops {
		out.Operators[i] = api.Operator{Name: o.Name, Created: o.Created, Nodes: o.Nodes}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) apiRevokeOperator(w http.ResponseWriter, r *http.Request) {
	if !c.adminAccounts(w, r) {
		return
	}
	if err := c.coord.RevokeOperator(r.Context(), r.PathValue("name")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
