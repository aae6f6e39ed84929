package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/verity-cdn/verity/internal/api"
)

// maxDetailLog bounds how much of a report's detail is logged.
const maxDetailLog = 256

func (g *Gateway) serveReport(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	rep, err := g.readReport(w, r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	node := "unknown"
	if nodes, err := g.liveNodes(r); err == nil {
		for _, n := range nodes {
			if n.id == rep.Node {
				node = n.id
				break
			}
		}
	}
	detail := rep.Detail
	if len(detail) > maxDetailLog {
		detail = detail[:maxDetailLog]
	}
	g.metrics.nodeReports.WithLabelValues(node, rep.Reason).Inc()
	if node != "unknown" {
		g.relayReport(r.Context(), node, site.Name, rep.Reason)
	}
	g.log.Info("node reported by worker", "site", site.Name, "node", rep.Node, "known", node != "unknown",
		"cid", rep.CID, "reason", rep.Reason, "detail", detail)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// readReport reads and checks a report body of at most MaxReportBytes.
func (g *Gateway) readReport(w http.ResponseWriter, r *http.Request) (api.Report, error) {
	var rep api.Report
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxReportBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return rep, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("report over %d bytes", g.cfg.MaxReportBytes)}
		}
		return rep, badRequest("reading report: %v", err)
	}
	return parseReport(body)
}

// parseReport decodes and validates a report.
func parseReport(body []byte) (api.Report, error) {
	var rep api.Report
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&rep); err != nil {
		return rep, badRequest("malformed report JSON: %v", err)
	}
	if dec.More() {
		return rep, badRequest("trailing data after report")
	}
	if rep.Node == "" || len(rep.Node) > 128 {
		return rep, badRequest("report needs a node id")
	}
	for _, reason := range api.ReportReasons {
		if rep.Reason == reason {
			return rep, nil
		}
	}
	return rep, badRequest("unknown report reason %q", rep.Reason)
}
