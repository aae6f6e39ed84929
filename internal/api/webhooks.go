package api

import "time"

// AddWebhook is the body of POST /v1/sites/{name}/webhooks: where to send
// the site's events, and which (event types such as "site.published";
// none: every type a webhook may subscribe to).
type AddWebhook struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
}

// Webhook is an endpoint registered for a site's events. Secret is set
// only in the answer that creates it: the gateway keeps it sealed and
// never shows it again.
type Webhook struct {
	ID      string    `json:"id"`
	Site    string    `json:"site"`
	URL     string    `json:"url"`
	Events  []string  `json:"events"`
	Created time.Time `json:"created"`
	Secret  string    `json:"secret,omitempty"`
}

// WebhookList answers GET /v1/sites/{name}/webhooks.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// WebhookAttempt is one delivery attempt of an event to an endpoint.
type WebhookAttempt struct {
	Event   string    `json:"event"`   // the event's id
	Type    string    `json:"type"`    // the event's type
	Attempt int       `json:"attempt"` // 1 for the first try of this delivery
	Time    time.Time `json:"time"`    // when the request was sent
	// Status is the endpoint's HTTP status, 0 when there was none (Error
	// says why: a refused or failed connection, a timeout).
	Status     int    `json:"status"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
	// NextRetry is when the next attempt is due; nil when this one
	// succeeded or was the last.
	NextRetry *time.Time `json:"nextRetry,omitempty"`
	// Redelivery is set on attempts of a delivery asked for again.
	Redelivery bool `json:"redelivery,omitempty"`
}

// WebhookLog answers GET /v1/sites/{name}/webhooks/{id}/log: the latest
// attempts, newest first.
type WebhookLog struct {
	Webhook  string           `json:"webhook"`
	Attempts []WebhookAttempt `json:"attempts"`
}

// RedeliverWebhook is the body of POST
// /v1/sites/{name}/webhooks/{id}/redeliver: the id of an event in the
// endpoint's log.
type RedeliverWebhook struct {
	Event string `json:"event"`
}
