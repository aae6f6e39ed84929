package control

import (
	"encoding/json"
	"net/http"

	"github.com/verity-cdn/verity/internal/api"
)

func (c *Control) apiAddWebhook(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.AddWebhook
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"url\": \"https://...\", \"events\": [\"site.published\", ...]}: %v", err))
		return
	}
	hook, err := c.AddWebhook(r.Context(), name, req.URL, req.Events)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, hook)
}

func (c *Control) apiListWebhooks(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	recs, err := c.siteWebhooks(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := api.WebhookList{Webhooks: []api.Webhook{}}
	for _, rec := range recs {
		out.Webhooks = append(out.Webhooks, rec.public())
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) apiRemoveWebhook(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	if err := c.RemoveWebhook(r.Context(), name, r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *Control) apiWebhookLog(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	log, err := c.WebhookLog(r.Context(), name, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, log)
}

func (c *Control) apiRedeliverWebhook(w http.ResponseWriter, r *http.Request) {
	name, ok := c.siteRequest(w, r)
	if !ok {
		return
	}
	var req api.RedeliverWebhook
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		c.fail(w, r, badRequest("body: want {\"event\": \"<event id>\"}: %v", err))
		return
	}
	if err := c.RedeliverWebhook(r.Context(), name, r.PathValue("id"), req.Event); err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, req)
}
