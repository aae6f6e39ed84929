package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/payment"
)

// SiteStatus is the answer of GET /v1/sites/{name}: the published record
// (nil before the first publish) and the latest deploy (nil without one).
type SiteStatus struct {
	Name   string        `json:"name"`
	Site   *SiteRecord   `json:"site,omitempty"`
	Deploy *DeployRecord `json:"deploy,omitempty"`
}

// apiError is the JSON body of every site API error.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"` // carcheck code for refused CARs
	CID   string `json:"cid,omitempty"`  // the offending block
}

// newAPI routes the gateway's own /v1/ API (besides the node connect path).
func (g *Gateway) newAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sites", g.apiCreateSite)
	mux.HandleFunc("GET /v1/sites", g.apiListSites)
	mux.HandleFunc("GET /v1/sites/{name}", g.apiGetSite)
	mux.HandleFunc("POST /v1/sites/{name}/deploy", g.apiDeploy)
	mux.HandleFunc("POST /v1/sites/{name}/rollback", g.apiRollback)
	mux.HandleFunc("GET "+ContentPrefix+"{file}", g.apiContent)
	mux.HandleFunc("GET "+EventsPath, g.apiEvents)
	g.routeAccounts(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.apiFail(w, r, fmt.Errorf("%w: %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	return mux
}

func (g *Gateway) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	body := apiError{Error: http.StatusText(code)}
	if code < 500 {
		body.Error = err.Error()
	}
	var ce *carcheck.Error
	if errors.As(err, &ce) {
		body.Code, body.CID = ce.Code, ce.CID
	}
	if code >= 500 {
		g.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	} else {
		g.log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="verity"`)
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

func (g *Gateway) apiCreateSite(w http.ResponseWriter, r *http.Request) {
	if g.dep == nil {
		g.apiFail(w, r, ErrDeployOff)
		return
	}
	if err := g.authorizeAdmin(r); err != nil {
		g.apiFail(w, r, err)
		return
	}
	var req struct {
		Name    string `json:"name"`
		Account string `json:"account"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		g.apiFail(w, r, badRequest("body: want {\"name\": \"...\", \"account\": \"...\"}: %v", err))
		return
	}
	if req.Account != "" && !payment.ValidAccount(req.Account) {
		g.apiFail(w, r, badAccountName(req.Account))
		return
	}
	token, err := g.CreateSiteFor(r.Context(), req.Name, req.Account)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	out := map[string]string{"name": req.Name, "token": token}
	if req.Account != "" {
		out["account"] = req.Account
	}
	writeJSON(w, http.StatusCreated, out)
}

func (g *Gateway) apiListSites(w http.ResponseWriter, r *http.Request) {
	if g.dep == nil {
		g.apiFail(w, r, ErrDeployOff)
		return
	}
	if err := g.authorizeAdmin(r); err != nil {
		g.apiFail(w, r, err)
		return
	}
	names := map[string]bool{}
	recs, _ := g.kvSites.List(r.Context())
	for _, rec := range recs {
		names[rec.Name] = true
	}
	if keys, err := g.dep.tokens.ListKeys(r.Context()); err == nil {
		for k := range keys.Keys() {
			names[k] = true
		}
	}
	out := []SiteStatus{}
	for _, name := range sortedKeys(names) {
		st, err := g.siteStatus(r, name)
		if err != nil {
			g.apiFail(w, r, err)
			return
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out})
}

func (g *Gateway) siteStatus(r *http.Request, name string) (SiteStatus, error) {
	st := SiteStatus{Name: name}
	if rec, err := g.kvSites.Record(r.Context(), name); err == nil {
		st.Site = &rec
	}
	d, ok, err := g.DeployStatus(r.Context(), name)
	if err != nil {
		return st, err
	}
	if ok {
		st.Deploy = &d
	}
	return st, nil
}

// siteRequest validates the {name} of r and authorizes it; it answers the
// error itself and returns false when the request cannot go on.
func (g *Gateway) siteRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	if g.dep == nil {
		g.apiFail(w, r, ErrDeployOff)
		return "", false
	}
	name := r.PathValue("name")
	if err := ValidateSiteName(name); err != nil {
		g.apiFail(w, r, err)
		return "", false
	}
	if err := g.authorizeSite(r, name); err != nil {
		g.apiFail(w, r, err)
		return "", false
	}
	return name, true
}

func (g *Gateway) apiGetSite(w http.ResponseWriter, r *http.Request) {
	name, ok := g.siteRequest(w, r)
	if !ok {
		return
	}
	st, err := g.siteStatus(r, name)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	if st.Site == nil && st.Deploy == nil {
		if _, err := g.dep.tokens.Get(r.Context(), name); err != nil {
			g.apiFail(w, r, fmt.Errorf("%w: %q", ErrUnknownSite, name))
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (g *Gateway) apiDeploy(w http.ResponseWriter, r *http.Request) {
	name, ok := g.siteRequest(w, r)
	if !ok {
		return
	}
	if r.ContentLength > g.cfg.MaxDeployBytes {
		g.apiFail(w, r, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("the CAR (%d bytes) is larger than the %d-byte limit", r.ContentLength, g.cfg.MaxDeployBytes)})
		return
	}
	account := r.URL.Query().Get("account")
	if account != "" && !payment.ValidAccount(account) {
		g.apiFail(w, r, badAccountName(account))
		return
	}
	if account != "" && !g.isAdmin(bearer(r)) {
		// A deploy token charges its own account only.
		own, err := g.tokenAccount(r.Context(), name)
		if err != nil {
			g.apiFail(w, r, err)
			return
		}
		if own != account {
			g.apiFail(w, r, &RequestError{Kind: ErrForbidden, Detail: "the deploy token of site " + strconv.Quote(name) +
				" may not charge account " + strconv.Quote(account) + "; only the admin token may choose another account"})
			return
		}
	}
	// A large upload may take longer than ReadTimeout allows a request.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.DeployTimeout))
	rec, err := g.DeployFor(r.Context(), name, account, http.MaxBytesReader(w, r.Body, g.cfg.MaxDeployBytes))
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

func (g *Gateway) apiRollback(w http.ResponseWriter, r *http.Request) {
	name, ok := g.siteRequest(w, r)
	if !ok {
		return
	}
	var req struct {
		Root string `json:"root"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			g.apiFail(w, r, badRequest("body: want {\"root\": \"<cid>\"} or nothing: %v", err))
			return
		}
	}
	rec, err := g.kvSites.Rollback(r.Context(), name, req.Root)
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// apiContent serves a verified deploy CAR to a node that signs the request.
func (g *Gateway) apiContent(w http.ResponseWriter, r *http.Request) {
	if g.dep == nil {
		g.apiFail(w, r, ErrDeployOff)
		return
	}
	node, err := g.coord.AuthenticateNode(r)
	if err != nil {
		g.apiFail(w, r, &RequestError{Kind: ErrForbidden, Detail: err.Error()})
		return
	}
	root, ok := strings.CutSuffix(r.PathValue("file"), ".car")
	c, perr := cid.Parse(root)
	if !ok || perr != nil || c.String() != root {
		g.apiFail(w, r, badRequest("want %s<root CID>.car", ContentPrefix))
		return
	}
	f, err := os.Open(g.dep.contentPath(root))
	if errors.Is(err, os.ErrNotExist) {
		g.apiFail(w, r, fmt.Errorf("%w: no CAR for %s on this gateway", ErrNotFound, root))
		return
	}
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		g.apiFail(w, r, err)
		return
	}
	g.log.Debug("serving CAR to node", "node", node, "root", root)
	w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
