package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/verity-cdn/verity/internal/scoredoc"
)

// ScoresPath is where workers post their node scores (text/plain, the
// scores document of internal/scoredoc, docs/protocol.md §6.8).
const ScoresPath = "/.verity/v1/scores"

// ScoreSink learns from the scores workers report: the coordinator's
// Router satisfies it.
type ScoreSink interface {
	ReportRTT(client netip.Addr, node string, rtt time.Duration)
	ReportErrors(client netip.Addr, node string, errs float64)
}

// serveScores takes a worker's scores document: bounded (MaxScoresBytes),
// rate-limited per client address (ScoresRate, ScoresBurst: 429 beyond),
// validated (400 when malformed). Lines about nodes the gateway does not
// list are ignored; the others feed Config.ScoreSink (the router the
// coordinator ranks nodes with): the RTT sample (when the worker measured
// one) and the error level.
func (g *Gateway) serveScores(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	client := clientAddr(r)
	if !g.scoreLimit.allow(client, g.cfg.Now()) {
		w.Header().Set("Retry-After", "10")
		g.fail(w, r, &RequestError{Kind: ErrRateLimited, Detail: "too many score reports from this address"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxScoresBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.fail(w, r, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("scores over %d bytes", g.cfg.MaxScoresBytes)})
			return
		}
		g.fail(w, r, badRequest("reading scores: %v", err))
		return
	}
	scores, err := scoredoc.Unmarshal(body)
	if err != nil {
		g.fail(w, r, badRequest("malformed scores document"))
		return
	}
	used := 0
	if sink := g.cfg.ScoreSink; sink != nil && len(scores) > 0 {
		if nodes, err := g.liveNodes(r); err == nil {
			live := make(map[string]bool, len(nodes))
			for _, n := range nodes {
				live[n.id] = true
			}
			for _, s := range scores {
				if !live[s.Node] {
					continue
				}
				// One sample per node and document: repeating a node's
				// line must not weigh as many reports.
				delete(live, s.Node)
				used++
				if s.Samples > 0 && s.RTTMicros > 0 {
					sink.ReportRTT(client, s.Node, time.Duration(s.RTTMicros)*time.Microsecond)
				}
				sink.ReportErrors(client, s.Node, float64(s.MilliErrors)/1000)
			}
		}
	}
	g.log.Debug("node scores from worker", "site", site.Name, "lines", len(scores), "used", used)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
