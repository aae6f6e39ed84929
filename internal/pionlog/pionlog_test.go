package pionlog_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/pion/logging"

	"github.com/verity-cdn/verity/internal/pionlog"
)

// recorder is a slog.Handler keeping every record it is given at or above
// its level.
type recorder struct {
	level slog.Level
	attrs []slog.Attr
	mu    *sync.Mutex
	recs  *[]slog.Record
}

func newRecorder(level slog.Level) *recorder {
	return &recorder{level: level, mu: new(sync.Mutex), recs: new([]slog.Record)}
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, rec)
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), *r.recs...)
}

func attrs(rec slog.Record) map[string]string {
	out := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

// Every pion level lands on its slog level, with the part's attributes
// and the pion scope.
func TestLevels(t *testing.T) {
	h := newRecorder(slog.LevelDebug)
	var f logging.LoggerFactory = pionlog.New(slog.New(h).With("part", "node"))
	l := f.NewLogger("ice")
	for _, tc := range []struct {
		log  func()
		msg  string
		want slog.Level
	}{
		{func() { l.Trace("t") }, "t", slog.LevelDebug},
		{func() { l.Tracef("t%d", 1) }, "t1", slog.LevelDebug},
		{func() { l.Debug("d") }, "d", slog.LevelDebug},
		{func() { l.Debugf("d%d", 1) }, "d1", slog.LevelDebug},
		{func() { l.Info("i") }, "i", slog.LevelDebug},
		{func() { l.Infof("i%d", 1) }, "i1", slog.LevelDebug},
		{func() { l.Warn("w") }, "w", slog.LevelWarn},
		{func() { l.Warnf("w%d", 1) }, "w1", slog.LevelWarn},
		{func() { l.Error("e") }, "e", slog.LevelError},
		{func() { l.Errorf("e%d", 1) }, "e1", slog.LevelError},
	} {
		before := len(h.records())
		tc.log()
		recs := h.records()
		if len(recs) != before+1 {
			t.Fatalf("%q: %d records, want 1", tc.msg, len(recs)-before)
		}
		rec := recs[len(recs)-1]
		if rec.Message != tc.msg || rec.Level != tc.want {
			t.Errorf("got %q at %s, want %q at %s", rec.Message, rec.Level, tc.msg, tc.want)
		}
		if a := attrs(rec); a["pion"] != "ice" || a["part"] != "node" {
			t.Errorf("%q: attributes %v, want pion=ice and part=node", tc.msg, a)
		}
	}
}

// Below the handler's level nothing is written and nothing formatted.
func TestDisabledLevels(t *testing.T) {
	h := newRecorder(slog.LevelWarn)
	l := pionlog.New(slog.New(h)).NewLogger("dtls")
	formatted := false
	probe := stringer(func() string { formatted = true; return "x" })
	l.Tracef("%v", probe)
	l.Debugf("%v", probe)
	l.Infof("%v", probe)
	l.Info("state changed")
	if recs := h.records(); len(recs) != 0 || formatted {
		t.Fatalf("at Warn: %d records, formatted %v; want none", len(recs), formatted)
	}
	l.Warnf("%v", probe)
	if recs := h.records(); len(recs) != 1 || !formatted || recs[0].Message != "x" {
		t.Fatalf("a warning: %d records, formatted %v", len(recs), formatted)
	}
}

type stringer func() string

func (s stringer) String() string { return s() }
