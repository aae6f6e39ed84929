package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// A speedTarget is one of the speed targets the project holds itself to
// (docs/benchmarks.md, "Where the speed targets stand"), stated over the
// metrics of one run: check returns the figure it compares, in words, and
// whether it holds; ok is false when the run did not measure its metrics
// (a section left out with -only, or one that failed).
type speedTarget struct {
	name  string
	bound string
	check func(r *Results) (figure string, holds, ok bool)
}

// targets are checked in this order at the end of a run. The visit
// targets are stated for a repeat visit (the worker's cache kept); the
// same bounds are shown for a first visit with the worker installed,
// every cache emptied, which docs/benchmarks.md reports beside them. The
// pin rate against Kubo is e2e/cmd/pinbench's, which prints its own
// ratio.
var targets = []speedTarget{
	{"a small asset through the warm worker", "≤ plain server at the nodes' distance + 10 ms", func(r *Results) (string, bool, bool) {
		w, ok1 := r.value("request_2k_worker")
		p, ok2 := r.value("request_2k_plain")
		return fmt.Sprintf("%.1f vs %.1f ms (%+.1f)", w, p, w-p), w <= p+10, ok1 && ok2
	}},
	bounded("worker over WebTransport ÷ raw WebTransport", "ratio_worker_wt_vs_raw_wt", 0.8, false),
	bounded("first verified byte of 1 MiB, nodes ÷ gateway", "ratio_ttfb_page_worker_v2_vs_gateway", 0.35, true),
	quotient("video first frame, nodes ÷ gateway", "video_ttff_nodes_10ms", "video_ttff_gateway_80ms", 0.6),
	quotient("video seek, nodes ÷ gateway", "video_seek_nodes_10ms", "video_seek_gateway_80ms", 0.6),
	quotient("video first frame, worker stopped first ÷ gateway", "video_ttff_stopped_worker", "video_ttff_gateway_80ms", 1),
	bounded("repeat visit, worker warm (its cache kept) ÷ gateway only", "ratio_visit_warm_cached_vs_gateway", 0.5, true),
	bounded("repeat visit, worker warm (its cache kept) ÷ plain server", "ratio_visit_warm_cached_vs_plain", 1.3, true),
	bounded("worker warm, every cache emptied (a first visit) ÷ gateway only", "ratio_visit_warm_vs_gateway", 0.5, true),
	bounded("worker warm, every cache emptied (a first visit) ÷ plain server", "ratio_visit_warm_vs_plain", 1.3, true),
	bounded("repeat visit, worker stopped first (its cache kept) ÷ gateway only", "ratio_visit_stopped_cached_vs_gateway", 1/1.5, true),
	bounded("worker stopped first, every cache emptied ÷ gateway only", "ratio_visit_stopped_vs_gateway", 1, true),
	{"natural repeat visit: bytes from nodes", "0 B", func(r *Results) (string, bool, bool) {
		v, ok := r.value("visit_repeat_node_bytes")
		return fmt.Sprintf("%.0f B", v), v == 0, ok
	}},
	bounded("a fetch through a stopped worker, past its cache (ms)", "fetch_cold_worker", 50, true),
	bounded("a fetch through a stopped worker, from its cache (ms)", "fetch_cold_worker_cached", 50, true),
	bounded("WebRTC through the worker (MB/s)", "page_worker_webrtc", 20, false),
	bounded("WebRTC through the worker ÷ raw data channel", "ratio_worker_webrtc_vs_raw_webrtc", 0.8, false),
	bounded("the worker's wasm, gzipped (B)", "wasm_size_gzip", 1<<20, true),
}

// bounded is a target on one metric: at most bound when below, else at
// least bound.
func bounded(name, metric string, bound float64, below bool) speedTarget {
	op := "≥"
	if below {
		op = "≤"
	}
	return speedTarget{name, fmt.Sprintf("%s %s", op, format(bound)), func(r *Results) (string, bool, bool) {
		v, ok := r.value(metric)
		if below {
			return format(v), v <= bound, ok
		}
		return format(v), v >= bound, ok
	}}
}

// quotient is a target on a/b, at most bound.
func quotient(name, a, b string, bound float64) speedTarget {
	return speedTarget{name, fmt.Sprintf("≤ %s", format(bound)), func(r *Results) (string, bool, bool) {
		va, ok1 := r.value(a)
		vb, ok2 := r.value(b)
		if !ok1 || !ok2 || vb <= 0 {
			return "", false, false
		}
		return fmt.Sprintf("%s (%s vs %s ms)", format(va/vb), format(va), format(vb)), va/vb <= bound, true
	}}
}

// TargetCheck is one target's verdict in a run.
type TargetCheck struct {
	Target string `json:"target"`
	Bound  string `json:"bound"`
	Figure string `json:"figure"`
	Holds  bool   `json:"holds"`
}

// checkTargets returns the verdict of every target the run measured.
func checkTargets(r *Results) []TargetCheck {
	var out []TargetCheck
	for _, t := range targets {
		fig, holds, ok := t.check(r)
		if ok {
			out = append(out, TargetCheck{Target: t.name, Bound: t.bound, Figure: fig, Holds: holds})
		}
	}
	return out
}

// writeTargets prints the verdicts as a table, after the metrics.
func writeTargets(w io.Writer, checks []TargetCheck) error {
	if len(checks) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\tbound\tthis run\tholds\n")
	for _, c := range checks {
		v := "no"
		if c.Holds {
			v = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Target, c.Bound, c.Figure, v)
	}
	return tw.Flush()
}
