package wasmclient_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/wasmclient"
)

func nodeIDs(ns []wasmclient.Node) string {
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	return strings.Join(ids, ",")
}

// TestScoresRank: nodes are ordered by measured latency and 64 KiB at
// their throughput, errors push a node back, unknown nodes count as good as
// the best, ties keep the session order.
func TestScoresRank(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sc := wasmclient.NewScoresForTest(func() time.Time { return now })
	nodes := []wasmclient.Node{{ID: "na"}, {ID: "nb"}, {ID: "nc"}}
	if got := nodeIDs(sc.Rank(nodes)); got != "na,nb,nc" {
		t.Fatalf("no scores: %s, want the session order", got)
	}
	sc.ObserveOpen("na", 50*time.Millisecond)
	sc.ObserveOpen("nb", 10*time.Millisecond)
	if got := nodeIDs(sc.Rank(nodes)); got != "nb,nc,na" {
		t.Fatalf("na 50 ms, nb 10 ms, nc unknown: %s, want nb,nc,na", got)
	}
	sc.ObserveError("nb")
	sc.ObserveError("nb")
	if got := nodeIDs(sc.Rank(nodes)); got != "na,nc,nb" {
		t.Fatalf("nb failed twice: %s, want na,nc,nb", got)
	}
	// Errors are forgiven over time: after five half-lives nb leads again.
	now = now.Add(5 * wasmclient.ScoreErrorHalfLife)
	if got := nodeIDs(sc.Rank(nodes)); got != "nb,nc,na" {
		t.Fatalf("errors decayed: %s, want nb,nc,na", got)
	}
	// Reading the scores does not decay them again: 2 errors, five
	// half-lives, 2/32 whatever the number of reads.
	for range 3 {
		sc.Rank(nodes)
		sc.All()
	}
	if s, ok := sc.Get("nb"); !ok || s.Errors != 2.0/32 || s.Samples != 1 || s.RTT != 10*time.Millisecond {
		t.Fatalf("nb score %+v", s)
	}
	// The time to the first 64 KiB counts: nb's at 1 MiB/s take 62.5
	// ms, na's at 64 MiB/s 1 ms; nc, not measured, is tried.
	sc.ObserveTransfer("nb", 1<<20, time.Second)
	sc.ObserveTransfer("na", 64<<20, time.Second)
	if got := nodeIDs(sc.Rank(nodes)); got != "na,nc,nb" {
		t.Fatalf("nb 10+62.5 ms, na 50+1 ms: %s, want na,nc,nb", got)
	}
}

// TestScoresHedgeDelay: three RTTs plus one block at the node's throughput,
// within the floor and ceiling; four floors for an unknown node.
func TestScoresHedgeDelay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sc := wasmclient.NewScoresForTest(func() time.Time { return now }) // floor 200 ms, ceiling 3 s
	for _, tc := range []struct {
		name string
		rtt  time.Duration
		bps  float64
		want time.Duration
	}{
		{"unknown", 0, 0, 800 * time.Millisecond},
		{"fast: floor", time.Millisecond, 0, 200 * time.Millisecond},
		{"slow: ceiling", 5 * time.Second, 0, 3 * time.Second},
		{"rtt and throughput", 100 * time.Millisecond, 1 << 20, 550 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "n-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.rtt > 0 {
				sc.ObserveOpen(id, tc.rtt)
			}
			if tc.bps > 0 {
				sc.ObserveTransfer(id, int64(tc.bps), time.Second)
			}
			if got := sc.HedgeDelay(id); got != tc.want {
				t.Fatalf("HedgeDelay %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScoresDocument(t *testing.T) {
	in := []wasmclient.NodeScore{
		{Node: "12D3KooWabc", RTT: 12345 * time.Microsecond, Throughput: 5e6, Errors: 1.5, Samples: 7, Updated: time.UnixMilli(1_800_000_000_123)},
		{Node: "nb", RTT: 0, Samples: 0, Updated: time.UnixMilli(0)},
	}
	doc := wasmclient.MarshalScores(in)
	want := "verity-scores 1\n12D3KooWabc 12345 5000000 1500 7 1800000000123\nnb 0 0 0 0 0\n"
	if string(doc) != want {
		t.Fatalf("document %q, want %q", doc, want)
	}
	out, err := wasmclient.UnmarshalScores(doc)
	if err != nil || len(out) != 2 || out[0].Node != in[0].Node || out[0].RTT != in[0].RTT ||
		out[0].Errors != 1.5 || out[0].Samples != 7 || !out[0].Updated.Equal(in[0].Updated) || out[0].Throughput != 5e6 {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if doc := wasmclient.MarshalScores([]wasmclient.NodeScore{{Node: "bad id"}, {Node: ""}}); string(doc) != "verity-scores 1\n" {
		t.Fatalf("invalid ids are left out: %q", doc)
	}
	many := "verity-scores 1\n" + strings.Repeat("n 1 1 0 1 1\n", wasmclient.MaxScoreNodes+1)
	for _, tc := range []struct{ name, doc string }{
		{"empty", ""},
		{"other magic", "verity-scores 2\nn 1 1 0 1 1\n"},
		{"five fields", "verity-scores 1\nn 1 1 0 1\n"},
		{"seven fields", "verity-scores 1\nn 1 1 0 1 1 1\n"},
		{"two spaces", "verity-scores 1\nn  1 1 0 1 1\n"},
		{"bad id", "verity-scores 1\nn\"x 1 1 0 1 1\n"},
		{"long id", "verity-scores 1\n" + strings.Repeat("x", 129) + " 1 1 0 1 1\n"},
		{"negative", "verity-scores 1\nn -1 1 0 1 1\n"},
		{"float", "verity-scores 1\nn 1.5 1 0 1 1\n"},
		{"rtt over an hour", "verity-scores 1\nn 3600000001 1 0 1 1\n"},
		{"huge errors", "verity-scores 1\nn 1 1 9999999999 1 1\n"},
		{"not a number", "verity-scores 1\nn 1 x 0 1 1\n"},
		{"blank line", "verity-scores 1\n\nn 1 1 0 1 1\n"},
		{"too many nodes", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wasmclient.UnmarshalScores([]byte(tc.doc)); !errors.Is(err, wasmclient.ErrBadScores) {
				t.Fatalf("err %v, want ErrBadScores", err)
			}
		})
	}
	if out, err := wasmclient.UnmarshalScores([]byte("verity-scores 1\n")); err != nil || len(out) != 0 {
		t.Fatalf("no nodes: %v, %v", out, err)
	}
}

// FuzzUnmarshalScores: the parser never panics, and what it accepts
// encodes back to a document it accepts with the same content.
func FuzzUnmarshalScores(f *testing.F) {
	f.Add([]byte("verity-scores 1\nna 1 2 3 4 5\n"))
	f.Add([]byte("verity-scores 1\n"))
	f.Add([]byte("verity-scores 1\nn -1 1 0 1 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := wasmclient.UnmarshalScores(data)
		if err != nil {
			return
		}
		again, err := wasmclient.UnmarshalScores(wasmclient.MarshalScores(out))
		if err != nil || len(again) != len(out) {
			t.Fatalf("re-encoded document rejected: %v", err)
		}
		if !bytes.Equal(wasmclient.MarshalScores(again), wasmclient.MarshalScores(out)) {
			t.Fatal("round trip changed the document")
		}
	})
}
