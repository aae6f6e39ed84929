package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
)

// EventsPath streams the event feed as Server-Sent Events (admin only).
const EventsPath = "/v1/events"

// eventsHeartbeat is how often an idle feed sends a comment line, so
// proxies and clients see the connection alive.
const eventsHeartbeat = 15 * time.Second

// apiEvents serves GET /v1/events[?types=a,b][&last=N][&follow=0] as
// text/event-stream: one "id/event/data" record per event (data is the
// JSON envelope), the last N stored events first, then new ones as they are
// stored; with follow=0 the stream ends after the stored ones.
func (c *Control) apiEvents(w http.ResponseWriter, r *http.Request) {
	if err := c.authorizeAdmin(r); err != nil {
		c.fail(w, r, err)
		return
	}
	var opts events.FollowOptions
	q := r.URL.Query()
	if v := q.Get("types"); v != "" {
		for _, t := range strings.Split(v, ",") {
			typ := events.Type(strings.TrimSpace(t))
			if !typ.Valid() {
				c.fail(w, r, &RequestError{Kind: ErrBadRequest, Detail: fmt.Sprintf("invalid event type %q", t)})
				return
			}
			opts.Types = append(opts.Types, typ)
		}
	}
	switch q.Get("follow") {
	case "", "1", "true":
	case "0", "false":
		opts.NoWait = true
	default:
		c.fail(w, r, &RequestError{Kind: ErrBadRequest, Detail: "follow must be 0 or 1"})
		return
	}
	if v := q.Get("last"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			c.fail(w, r, &RequestError{Kind: ErrBadRequest, Detail: "last must be a whole number"})
			return
		}
		opts.Last = n
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	tick := time.NewTicker(eventsHeartbeat)
	defer tick.Stop()
	feed := make(chan events.Event, 64)
	done := make(chan error, 1)
	defer func() {
		cancel()
		for range done {
		}
	}()
	go func() {
		defer close(done)
		done <- c.cfg.Bus.Follow(ctx, opts, func(ev events.Event) error {
			select {
			case feed <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(c.cfg.WriteStallTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case ev := <-feed:
			if rec, ok := sseRecord(ev); ok && !write(rec) {
				return
			}
		case <-tick.C:
			if !write(": keep-alive\n\n") {
				return
			}
		case err, ok := <-done:
			if ok && err != nil && ctx.Err() == nil {
				c.log.Warn("event feed ended", "err", err)
			}
			for {
				select {
				case ev := <-feed:
					if rec, ok := sseRecord(ev); ok && !write(rec) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// sseRecord is ev as one Server-Sent Events record, its data an
// api.Event; false if it does not marshal.
func sseRecord(ev events.Event) (string, bool) {
	data, err := json.Marshal(eventOf(ev))
	if err != nil {
		return "", false
	}
	return "id: " + ev.ID + "\nevent: " + string(ev.Type) + "\ndata: " + string(data) + "\n\n", true
}

// eventOf is ev as the feed shows it.
func eventOf(ev events.Event) api.Event {
	return api.Event{ID: ev.ID, Type: string(ev.Type), Time: ev.Time, Source: ev.Source, Data: ev.Data}
}
