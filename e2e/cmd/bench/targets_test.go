package main

import (
	"strings"
	"testing"
)

func TestCheckTargets(t *testing.T) {
	r := &Results{}
	r.add("request_2k_worker", 21.4, "ms", "")
	r.add("request_2k_plain", 14.6, "ms", "")
	r.add("ratio_worker_wt_vs_raw_wt", 0.63, "x", "")
	r.add("video_seek_nodes_10ms", 61.6, "ms", "")
	r.add("video_seek_gateway_80ms", 101.5, "ms", "")
	r.add("visit_repeat_node_bytes", 0, "B", "")
	r.add("wasm_size_gzip", 1048577, "B", "")
	r.add("page_worker_webrtc", 21.8, "MB/s", "")
	got := map[string]TargetCheck{}
	for _, c := range checkTargets(r) {
		got[c.Target] = c
	}
	for name, want := range map[string]bool{
		"a small asset through the warm worker":       true, // +6.8 ms
		"worker over WebTransport ÷ raw WebTransport": false,
		"video seek, nodes ÷ gateway":                 false, // 0.61
		"natural repeat visit: bytes from nodes":      true,
		"the worker's wasm, gzipped (B)":              false, // one byte over
		"WebRTC through the worker (MB/s)":            true,
	} {
		c, ok := got[name]
		if !ok {
			t.Errorf("%s: not checked", name)
			continue
		}
		if c.Holds != want {
			t.Errorf("%s: holds = %v (%s, bound %s), want %v", name, c.Holds, c.Figure, c.Bound, want)
		}
	}
	// Targets whose metrics the run did not measure are left out.
	if _, ok := got["video first frame, nodes ÷ gateway"]; ok {
		t.Error("a target with no figures in the run was checked")
	}
	if len(got) != 6 {
		t.Errorf("%d targets checked, want 6: %v", len(got), got)
	}
	if c := got["video seek, nodes ÷ gateway"]; !strings.HasPrefix(c.Figure, "0.61 ") {
		t.Errorf("seek figure %q", c.Figure)
	}
}
