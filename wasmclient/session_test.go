package wasmclient

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// inBackground is a revalidate hook that runs c.revalidated in a
// goroutine counted in wg, as Client.background does.
func inBackground(c *sessionCache, wg *sync.WaitGroup) func() {
	return func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.revalidated(context.Background())
		}()
	}
}

// waitLockHeld waits until a request holds c's lock (waiting, in the
// tests, for the load token).
func waitLockHeld(t *testing.T, c *sessionCache, what string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, func() bool {
		if c.mu.TryLock() {
			c.mu.Unlock()
			return false
		}
		return true
	})
}

func (l *blockingLoader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loads
}

// A request that finds the session past its ttl goes on with it while
// the session reloads in the background: it does not wait for the
// gateway's round trip (here, a gateway that does not answer until told
// to). One reload runs at a time; once it is done, requests get the new
// session. Past staleMax, a request waits for the reload as before. The
// held session is said to be past its ttl (Response.Stale), a loaded one
// not.
func TestStaleSessionServedWhileReloading(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	c := &sessionCache{loader: l, now: clock.Now, defaultTTL: time.Minute}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.open() // a failed check must not leave a reload waiting
	c.revalidate = inBackground(c, &wg)
	first, past, err := c.get(context.Background())
	if err != nil || past {
		t.Fatalf("the first load: %v, past %v", err, past)
	}
	clock.Add(2 * time.Second) // the session's ttl (1 s) passed

	got := make(chan *Session, 1)
	go func() {
		s, past, _ := c.get(context.Background())
		if !past {
			s = nil
		}
		got <- s
	}()
	select {
	case s := <-got:
		if s != first {
			t.Fatalf("past the ttl: got %v, want the session held, said past its ttl", s)
		}
	case <-time.After(testutil.Scale(5 * time.Second)):
		l.open()
		t.Fatal("a request past the session's ttl waited for the gateway to answer the reload")
	}
	testutil.Eventually(t, 5*time.Second, "the background reload asked the gateway", func() bool { return l.count() == 2 })
	if s, _, err := c.get(context.Background()); err != nil || s != first {
		t.Fatalf("while the reload runs: %v, %v; want the session held", s, err)
	}
	if n := l.count(); n != 2 {
		t.Fatalf("%d loads; a second request past the ttl started another reload", n)
	}

	l.open()
	var fresh *Session
	testutil.Eventually(t, 5*time.Second, "the reloaded session in use", func() bool {
		fresh, past, err = c.get(context.Background())
		return err == nil && fresh != first
	})
	if past {
		t.Fatal("the reloaded session is said to be past its ttl")
	}
	if n := l.count(); n != 2 {
		t.Fatalf("%d loads after the reload; want 2", n)
	}

	clock.Add(staleMax + 2*time.Second)
	s, _, err := c.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s == fresh || l.count() != 3 {
		t.Fatalf("a session %v past its ttl was served without a reload (loads %d, want 3)", staleMax, l.count())
	}
}

// A session past its ttl whose voucher has expired is not served on while
// it reloads: the request waits for the reload, which brings the next
// voucher, rather than go to nodes with nothing to pay them.
func TestStaleSessionWithExpiredVoucherReloadsFirst(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	clock := testutil.NewClock(start)
	_, gw, _ := ed25519.GenerateKey(nil)
	p := &payer{now: clock.Now}
	// keyLoader's vouchers expire an hour after its now: 90 s from start.
	l := &keyLoader{t: t, gw: gw, now: start.Add(-time.Hour + 90*time.Second), cap: 1 << 30}
	c := &sessionCache{loader: l, payer: p, now: clock.Now, defaultTTL: time.Minute}
	revalidations := 0
	c.revalidate = func() { revalidations++ }
	first, _, err := c.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !p.hasVoucher() {
		t.Fatal("no voucher from the first load")
	}
	clock.Add(2 * time.Minute) // the ttl (1 min) and the voucher passed
	s, _, err := c.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s == first || revalidations != 0 {
		t.Fatalf("a session whose voucher expired was served on (background reloads %d)", revalidations)
	}
}

// The worker script keeps its own copy of the session for its cache and
// answers a page under the root it last loaded. When it tells the Go
// worker of a root other than the one its session holds, the next request
// reloads the session first, within its ttl or past it, instead of
// fetching that page's files from the old root; a root the session
// already holds changes nothing.
func TestNotedRootReloadsFirst(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	l.open()
	c := &Client{sessions: &sessionCache{loader: l, now: clock.Now, defaultTTL: time.Minute}}
	revalidations := 0
	c.sessions.revalidate = func() { revalidations++ }
	first, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.NoteRoot(first.Root)
	if s, _ := c.Session(context.Background()); s != first || l.count() != 1 {
		t.Fatalf("the script noted the held root: reloaded (loads %d)", l.count())
	}

	c.NoteRoot("bafkreianotherroot")
	s, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s == first || l.count() != 2 {
		t.Fatalf("another root noted within the ttl: the held session served (loads %d, want 2)", l.count())
	}
	if again, _ := c.Session(context.Background()); again != s || l.count() != 2 {
		t.Fatalf("after the reload: loads %d, want 2", l.count())
	}

	clock.Add(2 * time.Second) // past the ttl (1 s): normally served on while it reloads
	c.NoteRoot("bafkreianotherroot")
	s2, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s || l.count() != 3 || revalidations != 0 {
		t.Fatalf("another root noted past the ttl: loads %d (want 3), background reloads %d (want 0)", l.count(), revalidations)
	}
}

// A request that must wait for a reload (the script noted another root)
// while a background reload is in flight waits for that one, then gets a
// session: the two never hold each other up.
func TestReloadWaitsForBackgroundReload(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	c := &Client{sessions: &sessionCache{loader: l, now: clock.Now, defaultTTL: time.Minute}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.open() // a failed check must not leave a reload waiting
	c.sessions.revalidate = inBackground(c.sessions, &wg)
	first, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Second)
	if s, _ := c.Session(context.Background()); s != first {
		t.Fatal("past the ttl: not the held session")
	}
	testutil.Eventually(t, 5*time.Second, "the background reload asked the gateway", func() bool { return l.count() == 2 })
	c.NoteRoot("bafkreianotherroot")
	got := make(chan *Session, 1)
	go func() {
		s, _ := c.Session(context.Background())
		got <- s
	}()
	// The request holds the session's lock, waiting for the load token.
	waitLockHeld(t, c.sessions, "the request waiting for the reload in flight")
	l.open()
	var s *Session
	select {
	case s = <-got:
		if s == nil || s == first {
			t.Fatalf("after the reloads: %v, want a reloaded session", s)
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("a request waiting for a reload while a background reload ran never returned")
	}
	wg.Wait()
	// The background reload finished first but installs after the
	// request's: it must not replace the newer session.
	if cur, _ := c.Session(context.Background()); cur != s {
		t.Fatalf("the background reload, older, replaced the request's session (loads %d)", l.count())
	}
}

// A root the script notes while a reload is in flight is not forgotten
// when that reload, asked for before the note, returns: the next request
// reloads again.
func TestNoteDuringReloadKept(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	c := &Client{sessions: &sessionCache{loader: l, now: clock.Now, defaultTTL: time.Minute}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.open()
	c.sessions.revalidate = inBackground(c.sessions, &wg)
	if _, err := c.Session(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Second)
	c.Session(context.Background()) // starts the background reload
	testutil.Eventually(t, 5*time.Second, "the background reload asked the gateway", func() bool { return l.count() == 2 })
	c.NoteRoot("bafkreianotherroot")
	l.open()
	wg.Wait()
	if _, err := c.Session(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := l.count(); n != 3 {
		t.Fatalf("%d loads; the root noted during the background reload was dropped when it returned (want 3)", n)
	}
}

// A worker that held a voucher and holds none now (a node refused it, and
// the session load since brought none) does not serve a session past its
// ttl while it reloads, whatever that session carried: the request waits
// for the reload, which may bring the voucher, rather than go to nodes
// with nothing to pay them.
func TestStaleSessionAfterRefusedVoucherReloadsFirst(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	l.open()
	p := &payer{now: clock.Now}
	c := &sessionCache{loader: l, payer: p, now: clock.Now, defaultTTL: time.Minute}
	revalidations := 0
	c.revalidate = func() { revalidations++ }
	if _, _, err := c.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), clock.Now().Add(time.Hour))})
	p.renew()                                   // a node refused it
	held, _, err := c.get(context.Background()) // the renewal: a load, which brings no voucher
	if err != nil || l.count() != 2 || held.Voucher != "" {
		t.Fatalf("the renewal: loads %d, err %v", l.count(), err)
	}
	clock.Add(2 * time.Second) // past the ttl (1 s)
	s, _, err := c.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s == held || l.count() != 3 || revalidations != 0 {
		t.Fatalf("a session past its ttl was served on with no voucher held (loads %d, want 3; background reloads %d)", l.count(), revalidations)
	}
}

// A root noted before a reload started is answered only when that
// reload's session is installed: a request that waits for the load token
// meanwhile (holding the session's lock, which the reload needs to
// install) must not take the cleared note for an answered one and go on
// with the old root.
func TestNoteAnsweredOnlyByInstalledSession(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	l := &blockingLoader{release: make(chan struct{})}
	defer l.open()
	p := &payer{now: clock.Now}
	c := &Client{sessions: &sessionCache{loader: l, payer: p, now: clock.Now, defaultTTL: time.Minute}, payer: p}
	first, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), clock.Now().Add(time.Hour))})
	c.NoteRoot("bafkreianotherroot")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); c.sessions.ahead(context.Background()) }()
	testutil.Eventually(t, 5*time.Second, "the reload asked the gateway", func() bool { return l.count() == 2 })
	got := make(chan *Session, 1)
	go func() {
		s, _ := c.Session(context.Background())
		got <- s
	}()
	waitLockHeld(t, c.sessions, "the request waiting for the load token")
	l.open()
	select {
	case s := <-got:
		if s == first {
			t.Fatal("the script noted another root before the reload, and the request went on with the old one")
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("the request never returned")
	}
}
