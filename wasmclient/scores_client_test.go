//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/wasmclient"
)

// memStore is a ScoreStore in memory, standing for the worker's Cache
// Storage across a restart.
type memStore struct {
	mu  sync.Mutex
	doc []byte
	n   int
}

func (m *memStore) LoadScores(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.doc), nil
}

func (m *memStore) SaveScores(_ context.Context, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc, m.n = bytes.Clone(doc), m.n+1
	return nil
}

func (m *memStore) get() ([]byte, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.doc), m.n
}

// TestScoresPersistedAndReported: a client learns that na fails, saves its
// scores and posts them to the gateway; a restarted client (same store)
// starts with them and asks nb first.
func TestScoresPersistedAndReported(t *testing.T) {
	s := demoSite(t)
	store := &memStore{}
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.ScoreStore = store })
	e.nodes[0].setFault(fault{corruptAt: e.carLen(t, "big.bin") / 2})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
		t.Fatalf("err %v", r.err)
	}
	// The report goes through HTTPScoreReporter.
	rep := &wasmclient.HTTPScoreReporter{Origin: e.gw.srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rep.ReportScores(ctx, wasmclient.MarshalScores(e.client.Scores().All())); err != nil {
		t.Fatal(err)
	}
	_ = e.client.Close() // waits for the save
	doc, saves := store.get()
	sc, err := wasmclient.UnmarshalScores(doc)
	if err != nil || saves == 0 {
		t.Fatalf("saved %d times, %q: %v", saves, doc, err)
	}
	byNode := map[string]wasmclient.NodeScore{}
	for _, x := range sc {
		byNode[x.Node] = x
	}
	if byNode["na"].Errors < 1 || byNode["nb"].Samples < 1 || byNode["nb"].Errors != 0 {
		t.Fatalf("saved scores %+v", sc)
	}
	e.gw.mu.Lock()
	posted := len(e.gw.scores)
	e.gw.mu.Unlock()
	if posted != 1 {
		t.Fatalf("gateway got %d scores documents, want 1", posted)
	}

	// Restart: a new client on the same store and nodes, na healthy again.
	e.nodes[0].setFault(fault{})
	c2, err := wasmclient.New(wasmclient.Config{
		Session:    &wasmclient.HTTPSessionLoader{Origin: e.gw.srv.URL},
		Transports: e.client.TransportsForTest(),
		ScoreStore: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	testutil.Eventually(t, 10*time.Second, "the restarted client to load the scores", func() bool {
		x, ok := c2.Scores().Get("na")
		return ok && x.Errors > 0
	})
	r = mustGet(t, c2, wasmclient.FetchRequest{Path: "/style.css"})
	if r.err != nil || r.resp.Node != "nb" {
		t.Fatalf("after restart served by %q (err %v), want nb: na's errors were remembered", r.resp.Node, r.err)
	}
}

// TestScoresReportedAfterRequests: with a ScoreReporter the client posts
// its scores after a request, at most once per ScoreReportEvery.
func TestScoresReportedAfterRequests(t *testing.T) {
	s := demoSite(t)
	var e *env
	e = newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.ScoreReporter = &lazyReporter{e: &e}
		c.ScoreReportEvery = time.Hour
	})
	posted := func() [][]byte {
		e.gw.mu.Lock()
		defer e.gw.mu.Unlock()
		return append([][]byte(nil), e.gw.scores...)
	}
	mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	testutil.Eventually(t, 10*time.Second, "the first scores post", func() bool { return len(posted()) > 0 })
	for i := 0; i < 2; i++ {
		mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	}
	_ = e.client.Close()
	docs := posted()
	if len(docs) != 1 {
		t.Fatalf("%d documents posted, want 1 (rate-limited)", len(docs))
	}
	sc, err := wasmclient.UnmarshalScores(docs[0])
	if err != nil || len(sc) != 1 || sc[0].Node != "na" || sc[0].Samples < 1 {
		t.Fatalf("posted %q: %v", docs[0], err)
	}
}

// lazyReporter posts to the env's gateway, known only once the env exists.
type lazyReporter struct{ e **env }

func (l *lazyReporter) ReportScores(ctx context.Context, doc []byte) error {
	return (&wasmclient.HTTPScoreReporter{Origin: (*l.e).gw.srv.URL}).ReportScores(ctx, doc)
}
