package wasmclient

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/scoredoc"
)

// NodeScore is what the worker has learnt about one node from its own
// requests.
type NodeScore struct {
	Node string
	// RTT is the moving average of the time from asking the node to having
	// the entity verified (one round trip plus the path blocks).
	RTT time.Duration
	// Throughput is the moving average of bytes per second over whole
	// segments of parallel fetches and over bodies the node delivered
	// while the reader waited on it (0: not measured yet).
	Throughput float64
	// Errors counts failures (bad block, reset, stall, ...), halved every
	// ScoreErrorHalfLife.
	Errors float64
	// Samples counts the RTT samples.
	Samples int
	// Updated is the time of the last sample.
	Updated time.Time

	// rateAt is when this worker last measured Throughput (zero for a
	// score loaded from the store: not persisted).
	rateAt time.Time
}

// Score bookkeeping constants.
const (
	// ScoreAlpha is the weight of a new sample in the moving averages.
	ScoreAlpha = 0.3
	// ScoreErrorHalfLife is how fast a node's errors are forgiven.
	ScoreErrorHalfLife = 10 * time.Minute
	// MaxScoreNodes bounds the nodes a Scores keeps (and a scores document
	// carries); the least recently updated go first.
	MaxScoreNodes = scoredoc.MaxNodes
	// rateFresh is how long a throughput this worker measured counts as
	// what the visitor's link carries now (FreshThroughput).
	rateFresh = 5 * time.Minute
)

// ErrBadScores: a scores document that does not parse.
var ErrBadScores = errors.New("wasmclient: malformed scores document")

// Scores keeps per-node scores; it is safe for concurrent use. The client
// ranks nodes with it, derives hedge delays from it, persists it through
// Config.ScoreStore and reports it through Config.ScoreReporter.
type Scores struct {
	now                func() time.Time
	hedgeMin, hedgeMax time.Duration

	mu    sync.Mutex
	m     map[string]*NodeScore
	dirty bool
}

func newScores(cfg Config) *Scores {
	return &Scores{now: cfg.Now, hedgeMin: cfg.HedgeMin, hedgeMax: cfg.HedgeMax, m: map[string]*NodeScore{}}
}

func (s *Scores) entry(node string) *NodeScore {
	e := s.m[node]
	if e == nil {
		if len(s.m) >= MaxScoreNodes {
			var old *NodeScore
			for _, x := range s.m {
				if old == nil || x.Updated.Before(old.Updated) {
					old = x
				}
			}
			delete(s.m, old.Node)
		}
		e = &NodeScore{Node: node}
		s.m[node] = e
	}
	*e = s.decayed(*e)
	e.Updated = s.now()
	s.dirty = true
	return e
}

// decayed returns e with its errors halved per ScoreErrorHalfLife since
// e.Updated (the stored entry keeps the count as of Updated).
func (s *Scores) decayed(e NodeScore) NodeScore {
	if e.Errors == 0 || e.Updated.IsZero() {
		return e
	}
	dt := s.now().Sub(e.Updated)
	for ; dt >= ScoreErrorHalfLife && e.Errors > 0; dt -= ScoreErrorHalfLife {
		e.Errors /= 2
	}
	if dt > 0 { // the rest of a half-life, linearly (no package math in the wasm)
		e.Errors *= 1 - float64(dt)/float64(ScoreErrorHalfLife)/2
	}
	if e.Errors < 0.01 {
		e.Errors = 0
	}
	return e
}

func ewma(old, sample float64, first bool) float64 {
	if first {
		return sample
	}
	return ScoreAlpha*sample + (1-ScoreAlpha)*old
}

// ObserveOpen records the time a node took to deliver a verified entity.
func (s *Scores) ObserveOpen(node string, d time.Duration) {
	if node == "" || node == GatewayNodeID || d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(node)
	e.RTT = time.Duration(ewma(float64(e.RTT), float64(d), e.Samples == 0))
	e.Samples++
}

// ObserveTransfer records n verified bytes received from node in d.
func (s *Scores) ObserveTransfer(node string, n int64, d time.Duration) {
	if node == "" || node == GatewayNodeID || n <= 0 || d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(node)
	e.Throughput = ewma(e.Throughput, float64(n)/d.Seconds(), e.Throughput == 0)
	e.rateAt = e.Updated
}

// FreshThroughput is node's throughput in bytes per second if this worker
// measured it within the last 5 minutes, else 0: a score kept from
// another visit, or an older one, may be of another link (what the
// visitor's link carries is what a slow source is judged against).
func (s *Scores) FreshThroughput(node string) float64 {
	s.mu.Lock()
	tp := 0.0
	if e := s.m[node]; e != nil && !e.rateAt.IsZero() && s.now().Sub(e.rateAt) < rateFresh {
		tp = e.Throughput
	}
	s.mu.Unlock()
	return tp
}

// ObserveError records a failure of node.
func (s *Scores) ObserveError(node string) {
	if node == "" || node == GatewayNodeID {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry(node).Errors++
}

// Get returns node's score, errors decayed to now.
func (s *Scores) Get(node string) (NodeScore, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[node]
	if !ok {
		return NodeScore{}, false
	}
	return s.decayed(*e), true
}

// All returns every score by node id, errors decayed to now.
func (s *Scores) All() []NodeScore { return s.snapshot(true) }

// snapshot returns every score by node id; decay: errors as of now, else
// as of each entry's Updated (what is persisted).
func (s *Scores) snapshot(decay bool) []NodeScore {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeScore, 0, len(s.m))
	for _, e := range s.m {
		if decay {
			out = append(out, s.decayed(*e))
		} else {
			out = append(out, *e)
		}
	}
	for i := 1; i < len(out); i++ { // insertion sort: few nodes, and no package sort in the wasm
		for j := i; j > 0 && out[j].Node < out[j-1].Node; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// cost orders nodes: the time to the first 64 KiB of a body (a web
// asset's size), its RTT plus that at its throughput (nothing while that
// is not measured, so that an unmeasured node gets tried), inflated by
// errors; ok false when unknown.
func (e *NodeScore) cost() (float64, bool) {
	if e == nil || (e.Samples == 0 && e.Errors == 0) {
		return 0, false
	}
	rtt := float64(e.RTT)
	if rtt <= 0 {
		rtt = float64(time.Second)
	}
	if e.Throughput > 0 {
		rtt += float64(slowJudgeBytes) / e.Throughput * float64(time.Second)
	}
	return rtt * (1 + 4*e.Errors), true
}

// Rank orders nodes best first: by the time to their first 64 KiB (RTT,
// and 64 KiB at their throughput) inflated by recent errors. Nodes
// without a score keep their place relative to each other and count as
// good as the best known one (so new nodes get tried); ties keep the
// session's order (the coordinator's ranking).
func (s *Scores) Rank(nodes []Node) []Node {
	s.mu.Lock()
	costs := make([]float64, len(nodes))
	known := make([]bool, len(nodes))
	best, any := 0.0, false
	for i, n := range nodes {
		var d *NodeScore
		if e := s.m[n.ID]; e != nil {
			x := s.decayed(*e)
			d = &x
		}
		costs[i], known[i] = d.cost()
		if known[i] && (!any || costs[i] < best) {
			best, any = costs[i], true
		}
	}
	s.mu.Unlock()
	idx := make([]int, len(nodes))
	for i := range idx {
		idx[i] = i
		if !known[i] {
			costs[i] = best
		}
	}
	for i := 1; i < len(idx); i++ { // stable insertion sort
		for j := i; j > 0 && costs[idx[j]] < costs[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	out := make([]Node, len(nodes))
	for i, j := range idx {
		out[i] = nodes[j]
	}
	return out
}

// HedgeDelay is how long a segment fetched from node may go without
// progress before another node is asked for it: three RTTs plus the time of
// one block at the node's throughput, within [HedgeMin, HedgeMax]; four
// HedgeMin for a node without samples.
func (s *Scores) HedgeDelay(node string) time.Duration {
	s.mu.Lock()
	e := s.m[node]
	var d time.Duration
	if e == nil || e.Samples == 0 {
		d = 4 * s.hedgeMin
	} else {
		d = 3 * e.RTT
		if e.Throughput > 0 {
			d += time.Duration(float64(blockAlign) / e.Throughput * float64(time.Second))
		}
	}
	s.mu.Unlock()
	return min(max(d, s.hedgeMin), s.hedgeMax)
}

// takeDirty reports whether the scores changed since the last call.
func (s *Scores) takeDirty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirty
	s.dirty = false
	return d
}

// MarshalScores encodes scores as the scores document, version 1
// (package internal/scoredoc, docs/protocol.md §6.8). The worker persists
// the same document and posts it to the gateway.
func MarshalScores(scores []NodeScore) []byte {
	out := make([]scoredoc.Score, len(scores))
	for i, e := range scores {
		out[i] = scoredoc.Score{
			Node: e.Node, RTTMicros: e.RTT.Microseconds(), BytesPerSec: int64(e.Throughput),
			MilliErrors: int64(e.Errors*1000 + 0.5), Samples: int64(e.Samples), UnixMs: e.Updated.UnixMilli(),
		}
	}
	return scoredoc.Marshal(out)
}

// UnmarshalScores parses a scores document. It fails with ErrBadScores on
// anything but a well-formed document of at most MaxScoreNodes lines.
func UnmarshalScores(data []byte) ([]NodeScore, error) {
	in, err := scoredoc.Unmarshal(data)
	if err != nil {
		return nil, ErrBadScores
	}
	out := make([]NodeScore, len(in))
	for i, s := range in {
		out[i] = NodeScore{
			Node: s.Node, RTT: time.Duration(s.RTTMicros) * time.Microsecond, Throughput: float64(s.BytesPerSec),
			Errors: float64(s.MilliErrors) / 1000, Samples: int(s.Samples), Updated: time.UnixMilli(s.UnixMs),
		}
	}
	return out, nil
}

// load merges persisted scores: an entry replaces the node's only if the
// client has learnt nothing about it yet.
func (s *Scores) load(scores []NodeScore) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range scores {
		if _, ok := s.m[e.Node]; ok || len(s.m) >= MaxScoreNodes {
			continue
		}
		e := e
		s.m[e.Node] = &e
	}
}

// ScoreStore persists the scores document across worker restarts (the
// worker uses Cache Storage).
type ScoreStore interface {
	LoadScores(ctx context.Context) ([]byte, error) // nil, nil: nothing stored
	SaveScores(ctx context.Context, doc []byte) error
}

// ScoreReporter sends the scores document to the gateway
// (POST ScoresPath).
type ScoreReporter interface {
	ReportScores(ctx context.Context, doc []byte) error
}

// ScoresPath is the gateway endpoint scores are posted to.
const ScoresPath = "/.verity/v1/scores"

// loadScores reads the store once at start (in the background).
func (c *Client) loadScores() {
	if c.cfg.ScoreStore == nil {
		return
	}
	c.background(func(ctx context.Context) {
		doc, err := c.cfg.ScoreStore.LoadScores(ctx)
		if err != nil || doc == nil {
			if err != nil {
				c.cfg.Logger.Debug("scores not loaded", "err", err)
			}
			return
		}
		sc, err := UnmarshalScores(doc)
		if err != nil {
			c.cfg.Logger.Debug("stored scores ignored", "err", err)
			return
		}
		c.scores.load(sc)
	})
}

// flushScores saves (at most every ScoreSaveEvery) and reports (at most
// every ScoreReportEvery) the scores after a request; the work runs in
// the background, one flush at a time.
func (c *Client) flushScores() {
	if c.cfg.ScoreStore == nil && c.cfg.ScoreReporter == nil {
		return
	}
	now := c.cfg.Now()
	c.mu.Lock()
	save := c.cfg.ScoreStore != nil && now.Sub(c.lastSave) >= c.cfg.ScoreSaveEvery
	report := c.cfg.ScoreReporter != nil && now.Sub(c.lastScoreReport) >= c.cfg.ScoreReportEvery
	if c.flushing || (!save && !report) || c.ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	if save && !c.scores.takeDirty() {
		save = false
	}
	if !save && !report {
		c.mu.Unlock()
		return
	}
	if save {
		c.lastSave = now
	}
	if report {
		c.lastScoreReport = now
	}
	c.flushing = true
	c.wg.Add(1)
	c.mu.Unlock()
	saved := MarshalScores(c.scores.snapshot(false)) // errors as of each entry's Updated
	reported := MarshalScores(c.scores.All())        // errors as of now
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			c.flushing = false
			c.mu.Unlock()
		}()
		ctx, cancel := WithTimeout(c.ctx, c.cfg.ReportTimeout)
		defer cancel()
		if save {
			if err := c.cfg.ScoreStore.SaveScores(ctx, saved); err != nil {
				c.cfg.Logger.Debug("scores not saved", "err", err)
			}
		}
		if report {
			if err := c.cfg.ScoreReporter.ReportScores(ctx, reported); err != nil {
				c.cfg.Logger.Debug("scores not reported", "err", err)
			}
		}
	}()
}
