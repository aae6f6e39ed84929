package events_test

import (
	"testing"

	"github.com/verity-cdn/verity/internal/events"
)

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","type":"site.published","time":"2026-01-02T03:04:05Z","source":"gw","data":{"site":"blog"}}`,
		`{"id":"","type":"site.published"}`,
		`{"id":"a","type":"verity.>"}`,
		`{"id":"a","type":"node.lost","data":null}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := events.ParseEvent(b)
		if err != nil {
			return
		}
		if ev.ID == "" || !ev.Type.Valid() {
			t.Fatalf("accepted invalid event %+v", ev)
		}
	})
}
