package acme

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

func openBus(t *testing.T) *events.Bus {
	t.Helper()
	bus, err := events.Open(t.Context(), events.Config{StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus
}

func newStorage(t *testing.T, bus *events.Bus) *KVStorage {
	t.Helper()
	kv, err := bus.KV(events.BucketTLS)
	if err != nil {
		t.Fatal(err)
	}
	return NewKVStorage(kv)
}

func TestEscapeKeyRoundTrip(t *testing.T) {
	for _, k := range []string{
		"certificates/acme-v02.api.letsencrypt.org-directory/demo.example.com/demo.example.com.crt",
		"users/ops@example.com/ops.json", "a_b", "*.wild", "x=y z", "ünï",
	} {
		e := escapeKey(k)
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/' || c == '_') {
				t.Fatalf("escapeKey(%q) = %q: byte %q not a KV key byte", k, e, c)
			}
		}
		if u, err := unescapeKey(e); err != nil || u != k {
			t.Fatalf("unescapeKey(escapeKey(%q)) = %q, %v", k, u, err)
		}
	}
	if _, err := unescapeKey("a_4"); err == nil {
		t.Fatal("truncated escape accepted")
	}
}

func TestKVStorageFiles(t *testing.T) {
	s := newStorage(t, openBus(t))
	ctx := t.Context()
	if _, err := s.Load(ctx, "certificates/x/a.example/a.example.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "certificates", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty list: %v, want fs.ErrNotExist", err)
	}
	files := map[string]string{
		"certificates/ca/a.example/a.example.crt":  "A-CRT",
		"certificates/ca/a.example/a.example.key":  "A-KEY",
		"certificates/ca/b.example/b.example.crt":  "B-CRT",
		"acme/ca/users/ops@example.com/ops.json":   "USER",
		"certificates/ca/*.wild.example/x.example": "W",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		if b, err := s.Load(ctx, k); err != nil || string(b) != v {
			t.Fatalf("Load(%s) = %q, %v", k, b, err)
		}
	}
	if !s.Exists(ctx, "certificates/ca") || !s.Exists(ctx, "acme/ca/users/ops@example.com/ops.json") || s.Exists(ctx, "certificates/c") {
		t.Fatal("Exists wrong")
	}
	got, err := s.List(ctx, "certificates/ca", false)
	want := []string{"certificates/ca/*.wild.example", "certificates/ca/a.example", "certificates/ca/b.example"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("List = %q, %v, want %q", got, err, want)
	}
	got, err = s.List(ctx, "certificates/ca/a.example", true)
	if err != nil || len(got) != 2 {
		t.Fatalf("recursive List = %q, %v", got, err)
	}
	if ki, err := s.Stat(ctx, "certificates/ca/a.example/a.example.key"); err != nil || !ki.IsTerminal || ki.Size != 5 || ki.Modified.IsZero() {
		t.Fatalf("Stat = %+v, %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "certificates/ca"); err != nil || ki.IsTerminal {
		t.Fatalf("Stat(dir) = %+v, %v", ki, err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing): %v", err)
	}
	// Deleting a directory deletes what is under it, and nothing else.
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.example") || !s.Exists(ctx, "certificates/ca/b.example/b.example.crt") {
		t.Fatal("Delete removed the wrong keys")
	}
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

// Two gateways on one bus share the lock: the second waits for the first's
// Unlock; a holder that died (stopped refreshing) loses the lock once it
// is stale.
func TestKVStorageLock(t *testing.T) {
	bus := openBus(t)
	a, b := newStorage(t, bus), newStorage(t, bus)
	ctx := t.Context()
	if err := a.Lock(ctx, "issue_cert_demo.example"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	err := b.Lock(short, "issue_cert_demo.example")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want a timeout", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_demo.example") }()
	if err := a.Unlock(ctx, "issue_cert_demo.example"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("Lock did not return after Unlock")
	}
	if err := b.Unlock(ctx, "issue_cert_demo.example"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, "issue_cert_demo.example"); err == nil {
		t.Fatal("Unlock of a lock not held succeeded")
	}

	// A holder that stops refreshing (its process died) is taken over.
	defer func(r, s time.Duration) { lockRefresh, lockStale = r, s }(lockRefresh, lockStale)
	lockRefresh, lockStale = time.Hour, 300*time.Millisecond
	if err := a.Lock(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, testutil.Scale(10*time.Second))
	defer wcancel()
	if err := b.Lock(wctx, "dead"); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	// The dead holder's late Unlock does not release the new holder's lock.
	lockStale = time.Hour // b's lock is not refreshed in this test: keep it fresh
	if err := a.Unlock(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := a.Lock(short, "dead"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock free after the old holder's Unlock: %v", err)
	}
	if err := b.Unlock(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
}
