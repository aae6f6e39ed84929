package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/verify"
)

// nodeInfo is a node whose record verified.
type nodeInfo struct {
	id   string
	http string // base URL, no trailing slash
	rec  noderecord.Signed
}

// liveNodes returns the nodes whose records verify now, ranked for the
// client of r when the NodeSource can (RankedNodeSource), those that failed
// recently last.
func (g *Gateway) liveNodes(r *http.Request) ([]nodeInfo, error) {
	ctx := r.Context()
	var (
		recs []noderecord.Signed
		err  error
	)
	if rs, ok := g.cfg.Nodes.(RankedNodeSource); ok {
		recs, err = rs.NodesFor(ctx, clientAddr(r))
	} else {
		recs, err = g.cfg.Nodes.Nodes(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	now := g.cfg.Now()
	out := make([]nodeInfo, 0, len(recs))
	for _, rec := range recs {
		if err := g.records.Verify(rec, now); err != nil {
			g.log.Warn("skipping node with invalid record", "node", rec.Record.NodeID, "err", err)
			continue
		}
		out = append(out, nodeInfo{id: rec.Record.NodeID, http: strings.TrimRight(rec.Record.HTTP, "/"), rec: rec})
	}
	g.health.order(out)
	return out, nil
}

// nodesFor returns liveNodes narrowed to the nodes that hold root: when the
// NodeSource is a PlacementSource with a placement for root and at least
// one of its pinned holders is live, only those, in the same order. Content without a
// placement (imported by a node's operator) or whose holders are all
// gone is tried on every live node.
func (g *Gateway) nodesFor(r *http.Request, root string) ([]nodeInfo, error) {
	nodes, err := g.liveNodes(r)
	ps, placed := g.cfg.Nodes.(PlacementSource)
	if err != nil || !placed {
		return nodes, err
	}
	p, ok := ps.Placement(root)
	if !ok {
		return nodes, nil
	}
	held := make([]nodeInfo, 0, len(nodes))
	for _, n := range nodes {
		if p.Nodes[n.id].State == coordinator.HolderPinned {
			held = append(held, n)
		}
	}
	if len(held) == 0 {
		return nodes, nil
	}
	return held, nil
}

// clientAddr is the address r came from (invalid when unknown).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// nodeHealth remembers nodes that failed, to try them last for a while.
type nodeHealth struct {
	backoff time.Duration
	now     func() time.Time
	mu      sync.Mutex
	failed  map[string]time.Time // node → until
}

func newNodeHealth(backoff time.Duration, now func() time.Time) *nodeHealth {
	return &nodeHealth{backoff: backoff, now: now, failed: make(map[string]time.Time)}
}

func (h *nodeHealth) fail(id string) {
	h.mu.Lock()
	h.failed[id] = h.now().Add(h.backoff)
	h.mu.Unlock()
}

func (h *nodeHealth) order(nodes []nodeInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	bad := func(id string) bool {
		until, ok := h.failed[id]
		if ok && now.After(until) {
			delete(h.failed, id)
			return false
		}
		return ok
	}
	sort.SliceStable(nodes, func(i, j int) bool { return !bad(nodes[i].id) && bad(nodes[j].id) })
}

// nodeFailure counts one failed node request against its node: in the
// metrics, in the gateway's own ordering (tried last for NodeBackoff), with
// the router (Config.ScoreSink ranks it behind for the client's network,
// as a worker's error report does) and on the bus (node.reported, which
// the coordinator forwards to the node).
func (g *Gateway) nodeFailure(r *http.Request, err *NodeError) {
	g.metrics.nodeFailures.WithLabelValues(err.Node, err.Reason).Inc()
	g.health.fail(err.Node)
	g.log.Warn("node failed", "node", err.Node, "reason", err.Reason, "err", err.Err)
	if g.cfg.ScoreSink != nil {
		g.cfg.ScoreSink.ReportErrors(clientAddr(r), err.Node, 1)
	}
	g.relayReport(r.Context(), err.Node, "", reportReason(err.Reason))
}

// reportReason is the worker report reason (api.ReportReasons) matching a
// node failure reason.
func reportReason(reason string) string {
	switch reason {
	case reasonVerify:
		return "bad-block"
	case reasonTimeout:
		return "timeout"
	case reasonUnreachable:
		return "unreachable"
	}
	return "protocol"
}

// Reasons of node failures (metric label).
const (
	reasonUnreachable = "unreachable"
	reasonTimeout     = "timeout"
	reasonStatus      = "status"
	reasonVerify      = "verify"
)

// nodeCall is one in-flight request to a node, guarded by a stall timer:
// it is cancelled when the node keeps it waiting NodeTimeout in all
// without sending nodeMinBytes.
type nodeCall struct {
	node    nodeInfo
	resp    *http.Response
	cancel  context.CancelFunc
	timer   *time.Timer
	d       time.Duration
	expired atomic.Bool
	waited  time.Duration // in Reads since got was last reset
	got     int           // read since then
}

// nodeMinBytes is what a node must send for every NodeTimeout the
// gateway waits on it: a node trickling its CAR a few bytes at a time,
// each well within NodeTimeout, would otherwise hold the request for as
// long as it liked.
const nodeMinBytes = 64 << 10

// carAccept asks a node for the CAR internal/verify reads (docs/protocol.md
// §2): with dups=y, every block as often as the traversal needs it. A bare
// application/vnd.ipld.car gets boxo's default, dups=n, which leaves out
// repeated blocks (a file with two equal chunks) and fails verification.
const carAccept = "application/vnd.ipld.car; version=1; order=dfs; dups=y"

// call sends GET target to node; it returns the response when its status
// is 200, and a *NodeError (or errNodeNotFound) otherwise.
func (g *Gateway) call(ctx context.Context, node nodeInfo, target string) (*nodeCall, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &nodeCall{node: node, cancel: cancel, d: g.cfg.NodeTimeout}
	c.timer = time.AfterFunc(c.d, func() { c.expired.Store(true); cancel() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node.http+target, nil)
	if err != nil {
		c.close()
		return nil, &NodeError{Node: node.id, Reason: reasonUnreachable, Err: err}
	}
	req.Header.Set("Accept", carAccept)
	// A node that requires payment serves its HTTP port to the
	// platform's signed requests only.
	nodeproto.SignGatewayRequest(req, g.payKey, g.cfg.Now())
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		c.close()
		return nil, c.failure(reasonUnreachable, err)
	}
	c.resp = resp
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		return c, nil
	case code == http.StatusNotFound:
		c.close()
		return nil, errNodeNotFound
	case code >= 400 && code < 500:
		// The node refuses the request itself: not a failure of the node.
		c.close()
		return nil, &refusedError{node: node.id, status: code}
	default:
		c.close()
		return nil, c.failure(reasonStatus, fmt.Errorf("status %d", code))
	}
}

// errNodeNotFound: the node answered 404 for the target.
var errNodeNotFound = fmt.Errorf("node: %w", ErrNotFound)

// refusedError: the node answered a 4xx other than 404, refusing the
// request as the client's error (malformed, too long) or for now (429).
type refusedError struct {
	node   string
	status int
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("node %s refused the request: status %d", e.node, e.status)
}

// clientError is what the client is answered when every node refused its
// request.
func (e *refusedError) clientError() error {
	switch e.status {
	case http.StatusTooManyRequests:
		return fmt.Errorf("%w: %v", ErrUnavailable, e)
	case http.StatusRequestURITooLong:
		return &RequestError{Kind: ErrURITooLong, Detail: "the nodes refused the request as too long"}
	}
	return badRequest("the nodes refused the request (status %d)", e.status)
}

func (c *nodeCall) failure(reason string, err error) *NodeError {
	if c.expired.Load() {
		return &NodeError{Node: c.node.id, Reason: reasonTimeout, Err: fmt.Errorf("%w: %v", ErrTimeout, err)}
	}
	return &NodeError{Node: c.node.id, Reason: reason, Err: err}
}

// Read reads the body. The stall timer runs only while a Read waits on
// the node, so a slow client never counts against the node; it runs on
// from Read to Read until the node has sent nodeMinBytes.
func (c *nodeCall) Read(p []byte) (int, error) {
	c.timer.Reset(c.d - c.waited)
	start := time.Now()
	n, err := c.resp.Body.Read(p)
	c.timer.Stop()
	c.waited += time.Since(start)
	if c.got += n; c.got >= nodeMinBytes {
		c.waited, c.got = 0, 0
	}
	return n, err
}

func (c *nodeCall) close() {
	c.timer.Stop()
	c.cancel()
	if c.resp != nil {
		c.resp.Body.Close()
	}
}

// entityFetch is an open, verified CAR response whose entity is resolved.
type entityFetch struct {
	*nodeCall
	vr     *verify.Reader
	entity verify.Entity
	blocks atomic.Int64
	car    *carTee // the verified CAR sections, with fetchMode.keepCAR
}

// fetchMode says what fetchEntity keeps of the response besides the
// entity's bytes.
type fetchMode struct {
	// keepCAR keeps the verified CAR sections (entityFetch.car), to relay
	// the CAR itself.
	keepCAR bool
	// sentCAR is how many of those the client has had already: a resume
	// from another node drops them.
	sentCAR int
	// uncharged: the fetch is the gateway's own errand (a site's
	// _headers for a session), so failures are not charged to nodes and
	// do not reorder the session it is for.
	uncharged bool
}

// fetchEntity asks nodes in turn for req until one answers with a CAR whose
// path and entity root verify. skip names nodes not to try. Nodes that
// fail are charged (nodeFailure); nodes that refuse the request as bad
// (4xx) are not.
func (g *Gateway) fetchEntity(r *http.Request, nodes []nodeInfo, req verify.Request, skip map[string]bool, mode fetchMode) (*entityFetch, error) {
	ctx := r.Context()
	target := req.Target()
	attempts, notFound := 0, false
	var (
		last    error
		refused *refusedError
	)
	for _, n := range nodes {
		if skip[n.id] {
			continue
		}
		if attempts == g.cfg.MaxNodeAttempts {
			break
		}
		attempts++
		c, err := g.call(ctx, n, target)
		if err != nil {
			if errors.Is(err, errNodeNotFound) {
				notFound = true
				continue
			}
			if errors.As(err, &refused) {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !mode.uncharged {
				g.nodeFailure(r, err.(*NodeError))
			}
			last = err
			continue
		}
		f := &entityFetch{nodeCall: c}
		src := io.Reader(c)
		if mode.keepCAR {
			f.car = newCARTee(c, mode.sentCAR)
			src = f.car
		}
		f.vr = verify.NewReader(src, req, verify.Options{OnBlock: func(b cid.CID, _ int) {
			f.blocks.Add(1)
			if f.car != nil {
				f.car.verified(b)
			}
		}})
		ent, err := f.vr.Entity()
		if err != nil {
			c.close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if isVerifyNotFound(err) {
				notFound = true
				continue
			}
			ne := c.failure(reasonVerify, err)
			if !mode.uncharged {
				g.nodeFailure(r, ne)
			}
			last = ne
			continue
		}
		f.entity = ent
		return f, nil
	}
	return nil, noNodeError(notFound, refused, last, "/"+strings.Join(req.Path, "/"))
}

// noNodeError is the error of a request no node could serve: what was not
// found when a node or the verifier said so, else the last node's failure,
// else the nodes' refusal of the request.
func noNodeError(notFound bool, refused *refusedError, last error, what string) error {
	switch {
	case notFound:
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	case last != nil && errors.Is(last, ErrTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, last)
	case last != nil:
		return fmt.Errorf("%w: %v", ErrNoNode, last)
	case refused != nil:
		return refused.clientError()
	default:
		return errNoNodeLeft
	}
}

// errNoNodeLeft: no node was left to try (none live, or every one skipped).
var errNoNodeLeft = fmt.Errorf("%w: no live node", ErrNoNode)

// retryError is the error of a request whose node failed (failed) after
// fetchEntity had found it, when the retry found no other: that failure
// says more than errNoNodeLeft (504 for a node that stalled).
func retryError(err error, failed *NodeError, what string) error {
	if failed != nil && errors.Is(err, errNoNodeLeft) {
		return noNodeError(false, nil, failed, what)
	}
	return err
}

// readFull reads the whole entity (at most max bytes).
func (f *entityFetch) readFull(max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f.vr, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}
