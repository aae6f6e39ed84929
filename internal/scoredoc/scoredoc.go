// Package scoredoc encodes the node scores document, version 1: what a
// worker has measured of the storage nodes it used. The worker persists it
// (Cache Storage) and posts it to the gateway (POST /.verity/v1/scores,
// docs/protocol.md §6.8), which feeds the coordinator's router.
//
// The document is text: the line "verity-scores 1", then one line per node
// with six fields separated by one space: the node id ([A-Za-z0-9._:-], at
// most 128 bytes), the RTT in microseconds (time from asking the node to
// having the entity verified, at most one hour), the throughput in bytes per
// second (at most 2^40), the errors in thousandths (a decaying count, at
// most 10^9), the RTT samples, and the last update in Unix milliseconds
// (at most 2^50); all but the id are non-negative decimal integers without
// leading zeros. Every
// line ends with "\n"; at most MaxNodes lines.
//
// The package is small on purpose: the worker's wasm imports it (no
// encoding/json, no reflection).
package scoredoc

import (
	"bytes"
	"errors"
	"strconv"
)

// Magic is the first line of a version 1 document.
const Magic = "verity-scores 1"

// Limits of a document.
const (
	MaxNodes     = 256
	MaxNodeIDLen = 128
	maxRTTMicros = 3600 * 1000 * 1000
	maxBPS       = 1 << 40
	maxMilliErrs = 1_000_000_000
	maxUnixMs    = 1 << 50
	maxSamples   = 1 << 40
)

// ErrMalformed is returned for anything but a well-formed document.
var ErrMalformed = errors.New("scoredoc: malformed scores document")

// Score is one node's line.
type Score struct {
	Node        string
	RTTMicros   int64
	BytesPerSec int64
	MilliErrors int64
	Samples     int64
	UnixMs      int64
}

// Marshal encodes scores; lines with an invalid id or out-of-range field
// are left out, and at most MaxNodes lines are written.
func Marshal(scores []Score) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	b.WriteByte('\n')
	n := 0
	for _, s := range scores {
		if n == MaxNodes {
			break
		}
		if !ValidNodeID(s.Node) || !s.valid() {
			continue
		}
		n++
		b.WriteString(s.Node)
		for _, v := range [...]int64{s.RTTMicros, s.BytesPerSec, s.MilliErrors, s.Samples, s.UnixMs} {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func (s Score) valid() bool {
	return s.RTTMicros >= 0 && s.RTTMicros <= maxRTTMicros && s.BytesPerSec >= 0 && s.BytesPerSec <= maxBPS &&
		s.MilliErrors >= 0 && s.MilliErrors <= maxMilliErrs && s.Samples >= 0 && s.Samples <= maxSamples &&
		s.UnixMs >= 0 && s.UnixMs <= maxUnixMs
}

// Unmarshal parses a document.
func Unmarshal(data []byte) ([]Score, error) {
	rest, ok := bytes.CutPrefix(data, []byte(Magic+"\n"))
	if !ok {
		return nil, ErrMalformed
	}
	out := []Score{}
	for len(rest) > 0 {
		line, tail, ok := bytes.Cut(rest, []byte("\n"))
		if !ok || len(out) == MaxNodes {
			return nil, ErrMalformed
		}
		rest = tail
		f := bytes.Split(line, []byte(" "))
		if len(f) != 6 || !ValidNodeID(string(f[0])) {
			return nil, ErrMalformed
		}
		var v [5]int64
		for i := range v {
			x, err := parseUint(f[i+1])
			if err != nil {
				return nil, err
			}
			v[i] = x
		}
		s := Score{Node: string(f[0]), RTTMicros: v[0], BytesPerSec: v[1], MilliErrors: v[2], Samples: v[3], UnixMs: v[4]}
		if !s.valid() {
			return nil, ErrMalformed
		}
		out = append(out, s)
	}
	return out, nil
}

// parseUint accepts 1 to 18 decimal digits, without leading zeros (one
// spelling per document).
func parseUint(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 || (len(b) > 1 && b[0] == '0') {
		return 0, ErrMalformed
	}
	var x int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrMalformed
		}
		x = x*10 + int64(c-'0')
	}
	return x, nil
}

// ValidNodeID accepts the characters node ids use, up to MaxNodeIDLen.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > MaxNodeIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}
