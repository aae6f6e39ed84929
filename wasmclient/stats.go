package wasmclient

import (
	"context"
	"sync"
)

// Reasons a node is reported for (the "reason" of POST /.verity/v1/report).
const (
	ReasonBadBlock    = "bad-block"   // a block failed verification or was not the one expected
	ReasonUnreachable = "unreachable" // connection failed or broke
	ReasonTimeout     = "timeout"     // no progress within the timeout
	ReasonProtocol    = "protocol"    // bad status, bad framing, truncated CAR
)

// Report is what the worker tells the gateway about a node that failed it.
type Report struct {
	Node   string `json:"node"`
	CID    string `json:"cid"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	At     int64  `json:"-"` // when it was made, Unix milliseconds
}

// Reporter delivers reports (POST /.verity/v1/report).
type Reporter interface {
	Report(ctx context.Context, r Report) error
}

// RequestRecord is the final account of one request, as the page sees it
// through {type:'verity-stats'}.
type RequestRecord struct {
	URL       string `json:"url"`
	Transport string `json:"transport"` // transport of the source that finished the body
	Node      string `json:"node"`      // node id, or "gateway"
	Blocks    int64  `json:"blocks"`    // blocks verified, all sources together
	Bytes     int64  `json:"bytes"`     // verified body bytes delivered
	TTFBMs    int64  `json:"ttfbMs"`    // request start to headers
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Failovers int    `json:"failovers"` // sources abandoned mid-request
	Parallel  int    `json:"parallel"`  // nodes that fetched the body at once (0: one stream)
	Lanes     int    `json:"lanes"`     // streams that fetched the body at once, all nodes together (0: one stream)
	Hedges    int    `json:"hedges"`    // segments asked of a second node because the first stalled
}

// Stats keeps the last Limit request records and reports. It is safe for
// concurrent use; the zero value keeps 200 of each.
type Stats struct {
	Limit int

	mu       sync.Mutex
	requests []RequestRecord
	reports  []Report
}

func (s *Stats) limit() int {
	if s.Limit <= 0 {
		return DefaultHistory
	}
	return s.Limit
}

func (s *Stats) addRequest(r RequestRecord) {
	s.mu.Lock()
	s.requests = appendBounded(s.requests, r, s.limit())
	s.mu.Unlock()
}

func (s *Stats) addReport(r Report) {
	s.mu.Lock()
	s.reports = appendBounded(s.reports, r, s.limit())
	s.mu.Unlock()
}

// Requests returns a copy of the kept request records, oldest first.
func (s *Stats) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]RequestRecord, 0, len(s.requests)), s.requests...)
}

// Reports returns a copy of the kept reports, oldest first.
func (s *Stats) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]Report, 0, len(s.reports)), s.reports...)
}

func appendBounded[T any](s []T, v T, n int) []T {
	if len(s) >= n {
		copy(s, s[len(s)-n+1:])
		s = s[:n-1]
	}
	return append(s, v)
}
