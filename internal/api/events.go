package api

import (
	"encoding/json"
	"time"
)

// Event is one record of the event feed, GET /v1/events: the "data" line
// of each Server-Sent Events record, whose "id" and "event" lines repeat
// ID and Type. Data is the type's payload (docs/events.md).
type Event struct {
	ID     string          `json:"id"`     // unique; the deduplication key
	Type   string          `json:"type"`   // e.g. "site.published"
	Time   time.Time       `json:"time"`   // when the action happened, UTC
	Source string          `json:"source"` // who emitted it: gateway/coordinator name
	Data   json.RawMessage `json:"data"`   // the type's payload, JSON
}
