package control

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

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/payment"
)

func (c *Control) apiCreateSite(w http.ResponseWriter, r *http.Request) {
	if err := c.authorizeAdmin(r); err != nil {
		c.fail(w, r, err)
		return
	}
	var req api.CreateSite
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"name\": \"...\", \"account\": \"...\"}: %v", err))
		return
	}
	if req.Account != "" && !payment.ValidAccount(req.Account) {
		c.fail(w, r, badAccountName(req.Account))
		return
	}
	token, err := c.CreateSiteFor(r.Context(), req.Name, req.Account)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	account := req.Account
	if account == "" {
		account = DefaultAccount
	}
	writeJSON(w, http.StatusCreated, api.SiteCreated{Name: req.Name, Token: token, Account: account})
}

func (c *Control) apiListSites(w http.ResponseWriter, r *http.Request) {
	if err := c.authorizeAdmin(r); err != nil {
		c.fail(w, r, err)
		return
	}
	names := map[string]bool{}
	recs, _ := c.sites.List(r.Context())
	for _, rec := range recs {
		names[rec.Name] = true
	}
	if keys, err := c.tokens.ListKeys(r.Context()); err == nil {
		for k := range keys.Keys() {
			names[k] = true
		}
	}
	out := api.SiteList{Sites: []api.SiteStatus{}}
	for _, name := range sortedKeys(names) {
		st, err := c.siteStatus(r, name)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out.Sites = append(out.Sites, st)
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) siteStatus(r *http.Request, name string) (api.SiteStatus, error) {
	st := api.SiteStatus{Name: name, URL: c.SiteURL(name)}
	if rec, err := c.sites.Record(r.Context(), name); err == nil {
		st.Site = &rec
	}
	d, ok, err := c.DeployStatus(r.Context(), name)
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
func (c *Control) siteRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if err := gateway.ValidateSiteName(name); err != nil {
		c.fail(w, r, err)
		return "", false
	}
	if err := c.authorizeSite(r, name); err != nil {
		c.fail(w, r, err)
		return "", false
	}
	return name, true
}

func (c *Control) apiGetSite(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	st, err := c.siteStatus(r, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if st.Site == nil && st.Deploy == nil {
		if _, err := c.tokens.Get(r.Context(), name); err != nil {
			c.fail(w, r, fmt.Errorf("%w: %q", gateway.ErrUnknownSite, name))
			return
		}
	}
	if st.Previews, err = c.sitePreviews(r.Context(), name); err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Control) apiDeploy(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	if r.ContentLength > c.cfg.MaxDeployBytes {
		c.fail(w, r, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("the CAR (%d bytes) is larger than the %d-byte limit", r.ContentLength, c.cfg.MaxDeployBytes)})
		return
	}
	account := r.URL.Query().Get("account")
	if account != "" && !payment.ValidAccount(account) {
		c.fail(w, r, badAccountName(account))
		return
	}
	if account != "" && !c.isAdmin(credential(r)) {
		// A deploy token charges its own account only.
		own, err := c.tokenAccount(r.Context(), name)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if own != account {
			c.fail(w, r, &RequestError{Kind: ErrForbidden, Detail: "the deploy token of site " + strconv.Quote(name) +
				" may not charge account " + strconv.Quote(account) + "; only the admin token may choose another account"})
			return
		}
	}
	// A large upload may take longer than ReadTimeout allows a request.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(c.cfg.DeployTimeout))
	body := http.MaxBytesReader(w, r.Body, c.cfg.MaxDeployBytes)
	if q := r.URL.Query(); q.Get("preview") != "" {
		var ttl time.Duration
		if s := q.Get("ttl"); s != "" {
			var err error
			if ttl, err = time.ParseDuration(s); err != nil || ttl <= 0 {
				c.fail(w, r, badRequest("ttl %q: want a positive duration such as 168h", clip(s)))
				return
			}
		}
		rec, err := c.DeployPreview(r.Context(), name, account, ttl, body)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, rec)
		return
	}
	rec, err := c.DeployFor(r.Context(), name, account, body)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

func (c *Control) apiRollback(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.Rollback
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			c.fail(w, r, badRequest("body: want {\"root\": \"<cid>\"} or nothing: %v", err))
			return
		}
	}
	rec, err := c.sites.Rollback(r.Context(), name, req.Root)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (c *Control) apiGetPreview(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	rec, err := c.Preview(r.Context(), name, r.PathValue("root"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (c *Control) apiPromote(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.Promote
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"root\": \"<cid>\"}: %v", err))
		return
	}
	rec, err := c.Promote(r.Context(), name, req.Root)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// apiContent serves a verified deploy CAR to a node that signs the request.
func (c *Control) apiContent(w http.ResponseWriter, r *http.Request) {
	node, err := c.coord.AuthenticateNode(r)
	if err != nil {
		c.fail(w, r, &RequestError{Kind: ErrForbidden, Detail: err.Error()})
		return
	}
	root, ok := strings.CutSuffix(r.PathValue("file"), ".car")
	parsed, perr := cid.Parse(root)
	if !ok || perr != nil || parsed.String() != root {
		c.fail(w, r, badRequest("want %s<root CID>.car", ContentPrefix))
		return
	}
	basePath := ""
	if base := r.URL.Query().Get("base"); base != "" {
		pb, err := cid.Parse(base)
		if err != nil || pb.String() != base {
			c.fail(w, r, badRequest("base: not a CID"))
			return
		}
		if _, err := os.Stat(c.contentPath(base)); err == nil {
			basePath = c.contentPath(base)
		}
	}
	c.log.Debug("serving CAR to node", "node", node, "root", root, "base", basePath != "")
	err = serveContent(w, r, c.contentPath(root), basePath)
	if errors.Is(err, os.ErrNotExist) {
		// Stored through another gateway of the cluster (an object a
		// bucket root's node lacks): fetched from its holders, verified.
		var f *os.File
		if f, err = c.OpenCAR(r.Context(), root); err == nil {
			f.Close()
			err = serveContent(w, r, c.contentPath(root), basePath)
		}
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNotFound) {
		c.fail(w, r, fmt.Errorf("%w: no CAR for %s on this gateway", ErrNotFound, root))
		return
	}
	if err != nil {
		c.log.Warn("serving CAR to node", "node", node, "root", root, "err", err)
		c.fail(w, r, err)
	}
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
