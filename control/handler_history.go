package control

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/payment"
)

// History: time series bucketed from what the bus keeps, so they survive
// a gateway's restart and are the same on every gateway. An account's
// (and a site's) traffic and spend come from the ledger's statement
// stream (VERITY_LEDGER: settlements to nodes, gateways' charges,
// top-ups, with the balance after each); a node's earnings from the
// settlements of every account's statement; event counts from the event
// stream. What is kept is what they keep (docs/console.md, History).
const (
	defaultHistorySpan = 24 * time.Hour
	defaultHistoryStep = time.Hour
	maxHistoryBuckets  = 1000
	// maxHistoryEvents bounds the events read for one answer.
	maxHistoryEvents = 200000

	// An answer may read every account's statement and maxHistoryEvents
	// events, so each credential has at most historyPerCredential of them
	// being computed at once, and the gateway maxHistoryInFlight; beyond
	// either: 429 with Retry-After. (The console asks for two at once at
	// most; a client polling one after another is never refused.)
	historyPerCredential = 2
	maxHistoryInFlight   = 4
)

// admitHistory takes a slot of r's credential's and one of the gateway's
// for a history answer; the caller calls release when done.
// ErrTooManyRequests when there is none.
func (c *Control) admitHistory(r *http.Request) (release func(), err error) {
	key := sha256.Sum256([]byte(credential(r)))
	if !c.historyHeld.Acquire(key) {
		return nil, &RequestError{Kind: ErrTooManyRequests, Detail: fmt.Sprintf("this credential has %d history answers being computed already: try again when they are done", historyPerCredential)}
	}
	select {
	case c.historySlots <- struct{}{}:
		return func() { <-c.historySlots; c.historyHeld.Release(key) }, nil
	default:
		c.historyHeld.Release(key)
		return nil, &RequestError{Kind: ErrTooManyRequests, Detail: "the gateway is busy answering other histories: try again in a second"}
	}
}

// Series names of an account's history.
const (
	seriesNodes   = "nodes"   // bytes settled to nodes
	seriesGateway = "gateway" // bytes charged by gateways
	seriesTopUps  = "topups"  // bytes credited
	seriesBalance = "balance" // the balance at the bucket's end
	// seriesReported: failures of nodes a site's visitors reported
	// (with ?site=).
	seriesReported = "reported"
	// Requests of a site (with ?site=, from site.traffic): answered by
	// the gateway itself (counted by it), and, as visitors' workers
	// reported them, answered from nodes, from their verified cache and
	// through the gateway.
	seriesReqGateway  = "requests_gateway"
	seriesReqNodes    = "requests_nodes"
	seriesReqCache    = "requests_cache"
	seriesReqFallback = "requests_fallback"
)

// seriesQuery is a history request's range.
type seriesQuery struct {
	since time.Time
	step  time.Duration
	n     int
}

// parseSeriesQuery reads ?since= (RFC 3339, or a duration back from
// now such as 24h; default 24 h ago) and ?step= (a duration, at least
// 1 s; default 1 h), at most maxHistoryBuckets buckets.
func (c *Control) parseSeriesQuery(r *http.Request) (seriesQuery, error) {
	now := c.cfg.Now().UTC()
	q := seriesQuery{since: now.Add(-defaultHistorySpan), step: defaultHistoryStep}
	v := r.URL.Query()
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			q.since = t.UTC()
		} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
			q.since = now.Add(-d)
		} else {
			return q, badRequest("since %q: want an RFC 3339 time or a duration back from now, such as 24h", clip(s))
		}
	}
	if s := v.Get("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			return q, badRequest("step %q: want a duration of at least 1s, such as 1h", clip(s))
		}
		q.step = d
	}
	if !q.since.Before(now) {
		return q, badRequest("since %s is not in the past", q.since.Format(time.RFC3339))
	}
	q.since = q.since.Truncate(q.step)
	q.n = int(now.Sub(q.since)/q.step) + 1
	if q.n > maxHistoryBuckets {
		return q, badRequest("%d buckets of %s from %s: at most %d; choose a larger step", q.n, q.step, q.since.Format(time.RFC3339), maxHistoryBuckets)
	}
	return q, nil
}

// series makes the empty answer for q with the named series.
func (q seriesQuery) series(names ...string) api.Series {
	s := api.Series{Since: q.since, Step: int64(q.step / time.Second), Times: make([]time.Time, q.n), Values: map[string][]int64{}}
	for i := range s.Times {
		s.Times[i] = q.since.Add(time.Duration(i) * q.step)
	}
	for _, n := range names {
		s.Values[n] = make([]int64, q.n)
	}
	return s
}

// bucket is the index of t's bucket, or -1 outside the range.
func (q seriesQuery) bucket(t time.Time) int {
	if t.Before(q.since) {
		return -1
	}
	i := int(t.Sub(q.since) / q.step)
	if i >= q.n {
		return -1
	}
	return i
}

// add adds v to series name at t's bucket, making the series if need be.
func (q seriesQuery) add(s *api.Series, name string, t time.Time, v int64) {
	i := q.bucket(t)
	if i < 0 {
		return
	}
	col := s.Values[name]
	if col == nil {
		col = make([]int64, q.n)
		s.Values[name] = col
	}
	col[i] += v
}

// apiAccountHistory answers GET /v1/accounts/{name}/history
// [?since=&step=&site=]: bytes settled to nodes, charged by gateways and
// topped up per bucket, and the balance at each bucket's end; with site,
// the nodes' and gateways' bytes of that site only (the balance stays
// the account's), the failures of nodes its visitors reported
// ("reported", from node.reported) and its requests ("requests_*", from
// site.traffic). Readable by whoever may read the
// account.
func (c *Control) apiAccountHistory(w http.ResponseWriter, r *http.Request) {
	name, ok := c.accountRead(w, r)
	if !ok {
		return
	}
	q, release, err := c.seriesRequest(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer release()
	site := r.URL.Query().Get("site")
	entries, err := c.ledger.Statement(r.Context(), name, ledger.StatementQuery{Since: q.since, Limit: 100000})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	acct, err := c.ledger.Account(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := q.series(seriesNodes, seriesGateway, seriesTopUps, seriesBalance)
	bal := out.Values[seriesBalance]
	// The balance before the range: the first entry's, undone; or, with
	// no entry in range, the balance now.
	start := acct.Balance
	if len(entries) > 0 {
		start = entries[0].Balance - balanceChange(entries[0])
	}
	has := make([]bool, q.n)
	for _, e := range entries {
		i := q.bucket(e.Time)
		if i < 0 {
			continue
		}
		bytes := int64(e.Bytes)
		switch e.Type {
		case ledger.EntrySettle, ledger.EntryCharge:
			if site != "" {
				bytes = int64(e.Sites[site])
			}
			col := seriesNodes
			if e.Type == ledger.EntryCharge {
				col = seriesGateway
			}
			out.Values[col][i] += bytes
		case ledger.EntryTopUp, ledger.EntryCreate:
			out.Values[seriesTopUps][i] += bytes
		}
		bal[i], has[i] = e.Balance, true // entries come oldest first
	}
	running := start
	for i := range bal {
		if has[i] {
			running = bal[i]
		}
		bal[i] = running
	}
	if site != "" {
		// Failures the site's visitors reported of nodes, and the
		// site's requests (site.traffic).
		for _, name := range []string{seriesReported, seriesReqGateway, seriesReqNodes, seriesReqCache, seriesReqFallback} {
			out.Values[name] = make([]int64, q.n)
		}
		err := c.eventsSince(r.Context(), q.since, []events.Type{events.TypeNodeReported, events.TypeSiteTraffic}, func(ev events.Event) {
			if ev.Type == events.TypeSiteTraffic {
				var d events.SiteTraffic
				if ev.Decode(&d) != nil {
					return
				}
				if n, ok := d.Sites[site]; ok {
					q.add(&out, seriesReqGateway, ev.Time, int64(n.Gateway))
					q.add(&out, seriesReqNodes, ev.Time, int64(n.Nodes))
					q.add(&out, seriesReqCache, ev.Time, int64(n.Cache))
					q.add(&out, seriesReqFallback, ev.Time, int64(n.Fallback))
				}
				return
			}
			var d events.NodeReported
			if ev.Decode(&d) == nil && d.Sites[site] > 0 {
				q.add(&out, seriesReported, ev.Time, int64(d.Sites[site]))
			}
		})
		if err != nil {
			c.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// balanceChange is what e did to the balance.
func balanceChange(e ledger.StatementEntry) int64 {
	if e.Type == ledger.EntrySettle || e.Type == ledger.EntryCharge {
		return -int64(e.Bytes)
	}
	return int64(e.Bytes)
}

// apiNodeHistory answers GET /v1/nodes/{id}/history[?since=&step=]: the
// bytes settled to the node per bucket, in all ("earned") and by account
// ("account:NAME"), from every account's statement; and the failures
// visitors reported of it and the audits it failed ("reported",
// "audit_failed"), from the event stream. The admin or its operator.
func (c *Control) apiNodeHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := payment.ParseNodeID(id); err != nil {
		c.fail(w, r, badRequest("invalid node id %q", clip(id)))
		return
	}
	if err := c.authorizeNode(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	q, release, err := c.seriesRequest(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer release()
	out := q.series("earned", "reported", "audit_failed")
	accounts, err := c.ledger.Accounts(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, a := range accounts {
		entries, err := c.ledger.Statement(r.Context(), a, ledger.StatementQuery{Since: q.since, Type: ledger.EntrySettle, Limit: 100000})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, e := range entries {
			if e.Node == id {
				q.add(&out, "earned", e.Time, int64(e.Bytes))
				q.add(&out, "account:"+a, e.Time, int64(e.Bytes))
			}
		}
	}
	err = c.eventsSince(r.Context(), q.since, []events.Type{events.TypeNodeReported, events.TypeNodeAuditFailed}, func(ev events.Event) {
		var d struct {
			Node    string         `json:"node"`
			Reasons map[string]int `json:"reasons"`
		}
		if ev.Decode(&d) != nil || d.Node != id {
			return
		}
		if ev.Type == events.TypeNodeAuditFailed {
			q.add(&out, "audit_failed", ev.Time, 1)
			return
		}
		for _, n := range d.Reasons {
			q.add(&out, "reported", ev.Time, int64(n))
		}
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// apiEventsHistory answers GET /v1/events/history[?since=&step=&types=]
// [&group=node] (admin): how many events of each type were stored per
// bucket; for node.reported, the reports they aggregate. With group=node,
// one series per type and node ("TYPE:NODE") of the events naming a node.
func (c *Control) apiEventsHistory(w http.ResponseWriter, r *http.Request) {
	if err := c.authorizeAdmin(r); err != nil {
		c.fail(w, r, err)
		return
	}
	q, release, err := c.seriesRequest(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer release()
	var types []events.Type
	if v := r.URL.Query().Get("types"); v != "" {
		for _, t := range strings.Split(v, ",") {
			typ := events.Type(strings.TrimSpace(t))
			if !typ.Valid() {
				c.fail(w, r, badRequest("invalid event type %q", clip(t)))
				return
			}
			types = append(types, typ)
		}
	}
	byNode := false
	switch g := r.URL.Query().Get("group"); g {
	case "":
	case "node":
		byNode = true
	default:
		c.fail(w, r, badRequest("group %q: want node or nothing", clip(g)))
		return
	}
	out := q.series()
	if !byNode {
		for _, t := range types {
			out.Values[string(t)] = make([]int64, q.n)
		}
	}
	err = c.eventsSince(r.Context(), q.since, types, func(ev events.Event) {
		n := int64(1)
		var d struct {
			Node    string         `json:"node"`
			Reasons map[string]int `json:"reasons"`
		}
		_ = ev.Decode(&d)
		if ev.Type == events.TypeNodeReported {
			n = 0
			for _, k := range d.Reasons {
				n += int64(k)
			}
		}
		name := string(ev.Type)
		if byNode {
			if d.Node == "" {
				return
			}
			name += ":" + d.Node
		}
		q.add(&out, name, ev.Time, n)
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// eventsSince calls fn with the stored events of types (all when empty)
// from since on, of the last maxHistoryEvents stored.
func (c *Control) eventsSince(ctx context.Context, since time.Time, types []events.Type, fn func(events.Event)) error {
	return c.cfg.Bus.Follow(ctx, events.FollowOptions{Types: types, Last: maxHistoryEvents, NoWait: true}, func(ev events.Event) error {
		if !ev.Time.Before(since) {
			fn(ev)
		}
		return nil
	})
}

// seriesRequest parses a history request's query and admits it among the
// history answers in flight; release ends the admission.
func (c *Control) seriesRequest(r *http.Request) (q seriesQuery, release func(), err error) {
	if q, err = c.parseSeriesQuery(r); err != nil {
		return q, nil, err
	}
	release, err = c.admitHistory(r)
	return q, release, err
}
