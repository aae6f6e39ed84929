package node

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxRecentErrors is how many warnings and errors the status page keeps.
const maxRecentErrors = 20

// LoggedError is a warning or error the node logged, for its status page.
type LoggedError struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs,omitempty"` // key=value pairs
}

// recentErrors keeps the last warnings and errors logged.
type recentErrors struct {
	mu   sync.Mutex
	ring []LoggedError
}

func (r *recentErrors) add(e LoggedError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) == maxRecentErrors {
		copy(r.ring, r.ring[1:])
		r.ring = r.ring[:maxRecentErrors-1]
	}
	r.ring = append(r.ring, e)
}

// list returns them newest first.
func (r *recentErrors) list() []LoggedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LoggedError, len(r.ring))
	for i, e := range r.ring {
		out[len(r.ring)-1-i] = e
	}
	return out
}

// recordingHandler passes records on to next and keeps warnings and
// errors in rec.
type recordingHandler struct {
	next  slog.Handler
	rec   *recentErrors
	attrs []slog.Attr
}

func (h *recordingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		add := func(a slog.Attr) bool {
			if a.Key == "node" {
				return true // it is this node
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(a.Key + "=" + a.Value.String())
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		h.rec.add(LoggedError{Time: r.Time, Level: r.Level.String(), Message: r.Message, Attrs: b.String()})
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{next: h.next.WithAttrs(as), rec: h.rec, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{next: h.next.WithGroup(name), rec: h.rec, attrs: h.attrs}
}
