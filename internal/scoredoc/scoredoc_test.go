package scoredoc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/scoredoc"
)

func TestRoundTrip(t *testing.T) {
	in := []scoredoc.Score{
		{Node: "n-a.b_c:1", RTTMicros: 1, BytesPerSec: 2, MilliErrors: 3, Samples: 4, UnixMs: 5},
		{Node: "bad id"}, // left out
		{Node: "neg", RTTMicros: -1},
		{Node: "z"},
	}
	doc := scoredoc.Marshal(in)
	if want := "verity-scores 1\nn-a.b_c:1 1 2 3 4 5\nz 0 0 0 0 0\n"; string(doc) != want {
		t.Fatalf("Marshal = %q, want %q", doc, want)
	}
	out, err := scoredoc.Unmarshal(doc)
	if err != nil || len(out) != 2 || out[0] != in[0] || out[1] != in[3] {
		t.Fatalf("Unmarshal = %+v, %v", out, err)
	}
}

func TestMalformed(t *testing.T) {
	for _, doc := range []string{
		"", "verity-scores 1", "verity-scores 2\n", "VERITY-SCORES 1\n",
		"verity-scores 1\nn 1 2 3 4 5", // no final newline
		"verity-scores 1\nn 1 2 3 4\n", "verity-scores 1\nn 1 2 3 4 5 6\n",
		"verity-scores 1\nn 1 2 3 4 +5\n", "verity-scores 1\nn 1 2 3 4 0x5\n", "verity-scores 1\nn 01 2 3 4 5\n",
		"verity-scores 1\nn 1 2 3 4 1234567890123456789\n",
		"verity-scores 1\n\n", "verity-scores 1\nn\t1 2 3 4 5\n", "verity-scores 1\nn 1 2 3 4 5\r\n",
		"verity-scores 1\nn 3600000001 2 3 4 5\n", "verity-scores 1\nn 1 1099511627777 3 4 5\n",
		"verity-scores 1\n" + strings.Repeat("n 1 2 3 4 5\n", scoredoc.MaxNodes+1),
	} {
		if _, err := scoredoc.Unmarshal([]byte(doc)); !errors.Is(err, scoredoc.ErrMalformed) {
			t.Errorf("Unmarshal(%.60q) err %v, want ErrMalformed", doc, err)
		}
	}
	if out, err := scoredoc.Unmarshal([]byte("verity-scores 1\n" + strings.Repeat("n 1 2 3 4 5\n", scoredoc.MaxNodes))); err != nil || len(out) != scoredoc.MaxNodes {
		t.Fatalf("MaxNodes lines: %d, %v", len(out), err)
	}
}

// FuzzUnmarshal: no panic; an accepted document re-encodes to itself.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte("verity-scores 1\nn 1 2 3 4 5\n"))
	f.Add([]byte("verity-scores 1\n"))
	f.Add([]byte("verity-scores 1\nn 1 2 3 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := scoredoc.Unmarshal(data)
		if err != nil {
			return
		}
		if again := scoredoc.Marshal(out); !bytes.Equal(again, data) {
			t.Fatalf("accepted %q, re-encoded %q", data, again)
		}
	})
}
