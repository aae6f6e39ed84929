package coordinator

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/netguard"
	"github.com/verity-cdn/verity/internal/nodeproto"
	// zeebo/blake3 for the block checks.
	_ "github.com/verity-cdn/verity/internal/blake3mh"
)

// Proof of storage. A node's "pinned" answer is a claim: the holding is
// HolderAuditing, counts for nothing, and is listed to no visitor until
// the coordinator has fetched random blocks of the root from the node's
// HTTP URL (GET /ipfs/<cid>?format=raw) and verified each against its CID.
// A block is chosen by a random walk from the root, each link taken with a
// probability proportional to its Tsize, so every byte of the DAG is as
// likely to be checked. Holdings are audited again at random afterwards
// (Config.AuditInterval). A node that fails loses the holding (failed,
// with every attempt spent, so the root is placed elsewhere), is ranked
// behind every other node by the router for AuditPenalty, and
// node.audit_failed is emitted.

// maxAuditBlock bounds a block fetched in an audit.
const maxAuditBlock = 2 << 20

// maxAuditDepth bounds a walk: a balanced DAG of 174-wide nodes is a few
// levels deep; a directory tree adds its depth.
const maxAuditDepth = 64

// AuditError is a failed audit: the block that failed, when one did.
type AuditError struct {
	Block  string
	Reason string
}

func (e *AuditError) Error() string {
	if e.Block == "" {
		return "coordinator: audit failed: " + e.Reason
	}
	return "coordinator: audit failed at block " + e.Block + ": " + e.Reason
}

// Unwrap returns ErrAudit.
func (e *AuditError) Unwrap() error { return ErrAudit }

// auditKey names one holding being audited.
type auditKey struct{ node, root string }

// startAudit audits node's holding of root in the background. It returns
// at once. When an audit of that holding is running, another runs once it
// is done: the holding may have changed meanwhile (failed, ordered again,
// said pinned again), and a claim no audit follows would stay "auditing".
func (c *Coordinator) startAudit(node, root string) {
	k := auditKey{node, root}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if _, running := c.auditing[k]; running {
		c.auditing[k] = true
		c.mu.Unlock()
		return
	}
	c.auditing[k] = false
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			again := c.auditing[k]
			delete(c.auditing, k)
			c.auditEnded[k] = c.cfg.Now()
			c.mu.Unlock()
			if again {
				c.startAudit(node, root)
			}
		}()
		select {
		case c.auditSem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		defer func() { <-c.auditSem }()
		s, _ := c.cachedState(node)
		base := auditBase(s)
		if base == "" {
			// Not live as seen here (gone, or its state not read yet after
			// a failover): retryPins audits it again while it is connected.
			c.log.Debug("audit put off: node not live here", "node", node, "root", root)
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.AuditTimeout)
		audit := c.Audit
		if c.cfg.audit != nil {
			audit = c.cfg.audit
		}
		err := audit(ctx, base, root)
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		c.auditDone(node, root, err)
	}()
}

// auditBase is the URL an audit of a node in state s fetches from: its
// HTTP URL while it is live, else "" (no audit can run).
func auditBase(s NodeState) string {
	if s.State != StateLive {
		return ""
	}
	return strings.TrimRight(s.Record.Record.HTTP, "/")
}

// Audit fetches Config.AuditWalks random blocks of root from the node
// serving base (its HTTP URL), each at the end of a Tsize-weighted random
// walk from the root, and verifies every block on the way. It returns nil
// when all verify, or an *AuditError.
func (c *Coordinator) Audit(ctx context.Context, base, root string) error {
	rc, err := cid.Decode(root)
	if err != nil {
		return &AuditError{Reason: "bad root CID"}
	}
	client := c.auditClient()
	defer client.CloseIdleConnections()
	for range c.cfg.AuditWalks {
		cur := rc
		for depth := 0; ; depth++ {
			if depth > maxAuditDepth {
				return &AuditError{Block: cur.String(), Reason: "DAG deeper than the audit allows"}
			}
			data, err := fetchBlock(ctx, client, base, cur, c.cfg.RequestKey, c.cfg.Now())
			if err != nil {
				return err
			}
			if cur.Prefix().Codec != cid.DagProtobuf {
				break // a leaf
			}
			nd, err := merkledag.DecodeProtobuf(data)
			if err != nil {
				return &AuditError{Block: cur.String(), Reason: "not a dag-pb block"}
			}
			links := nd.Links()
			if len(links) == 0 {
				break
			}
			var total uint64
			for _, l := range links {
				total += l.Size
			}
			pick := links[rand.IntN(len(links))]
			if total > 0 {
				r := rand.Uint64N(total)
				for _, l := range links {
					if r < l.Size {
						pick = l
						break
					}
					r -= l.Size
				}
			}
			cur = pick.Cid
		}
	}
	return nil
}

// fetchBlock gets one block from the node and verifies it against c.
// The request is signed with key (Config.RequestKey) at now, when there is
// one: a node that requires payment answers an unsigned one with 402.
func fetchBlock(ctx context.Context, client *http.Client, base string, c cid.Cid, key ed25519.PrivateKey, now time.Time) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ipfs/"+c.String()+"?format=raw", nil)
	if err != nil {
		return nil, &AuditError{Block: c.String(), Reason: err.Error()}
	}
	nodeproto.SignGatewayRequest(req, key, now)
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &AuditError{Block: c.String(), Reason: "not served in time"}
		}
		return nil, &AuditError{Block: c.String(), Reason: "unreachable: " + clipN(err.Error(), 120)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &AuditError{Block: c.String(), Reason: fmt.Sprintf("answered %d", resp.StatusCode)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAuditBlock+1))
	if err != nil {
		return nil, &AuditError{Block: c.String(), Reason: "cut short"}
	}
	if len(data) > maxAuditBlock {
		return nil, &AuditError{Block: c.String(), Reason: "block too large"}
	}
	got, err := c.Prefix().Sum(data)
	if err != nil || !got.Equals(c) {
		return nil, &AuditError{Block: c.String(), Reason: "corrupt block (does not match its CID)"}
	}
	return data, nil
}

// grant returns the header value letting node fetch content (a root's
// DAG or one block, by scope) from other nodes for GrantTTL, or ""
// without a RequestKey.
func (c *Coordinator) grant(node, content, scope string) string {
	if c.cfg.RequestKey == nil {
		return ""
	}
	return nodeproto.SignGrant(nodeproto.Grant{Node: node, CID: content, Scope: scope, Expires: c.cfg.Now().Add(nodeproto.GrantTTL)}, c.cfg.RequestKey)
}

// auditClient fetches from nodes, refusing addresses that are not
// allowed (Config.AllowPrivateAddrs), whatever a name resolves to.
func (c *Coordinator) auditClient() *http.Client {
	guard := netguard.Guard{AllowPrivate: c.cfg.AllowPrivateAddrs}
	d := &net.Dialer{Control: guard.Control, Timeout: c.cfg.AuditTimeout}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil, MaxIdleConnsPerHost: 1},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// auditDone records an audit's outcome: a passed first audit makes the
// holding pinned (and content.replicated is emitted); a failure drops the
// holding, penalizes the node, emits node.audit_failed and places the
// root elsewhere.
func (c *Coordinator) auditDone(node, root string, auditErr error) {
	now := c.cfg.Now().UTC()
	var site, replaced, kept string
	isLive := map[string]bool{}
	if live, err := c.LiveNodes(c.ctx); err == nil {
		for _, s := range live {
			isLive[s.Node()] = true
		}
	}
	out, err := c.updatePlacement(c.ctx, root, func(p *Placement) bool {
		cur, ok := p.Nodes[node]
		if !ok || (cur.State != HolderAuditing && cur.State != HolderPinned) {
			return false // no longer a holder
		}
		replaced, kept = "", ""
		if auditErr == nil {
			if cur.State != HolderAuditing {
				return false
			}
			p.Nodes[node] = Holder{State: HolderPinned, Since: now}
			if r := cur.Replaces; r != "" && r != node {
				// A rebalancing move: the copy it took over goes, unless
				// the root would be left short without it (another holder
				// failed or was lost during the move, and the repairs
				// counted this one and the one it replaces as two).
				if _, ok := p.Nodes[r]; ok {
					others := 0
					for id, h := range p.Nodes {
						if id != r && isLive[id] && h.State != HolderFailed {
							others++
						}
					}
					if others >= p.Replicas {
						delete(p.Nodes, r)
						replaced = r
					} else {
						kept = r
					}
				}
			}
		} else {
			p.Nodes[node] = Holder{State: HolderFailed, Since: now, Error: clipN(auditErr.Error(), 200), Attempts: c.cfg.PinAttempts}
		}
		if len(p.Sites) > 0 {
			site = p.Sites[0]
		}
		return true
	})
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("storing audit result failed", "node", node, "root", root, "err", err)
		}
		return
	}
	if out.Root == "" {
		return
	}
	if auditErr == nil {
		c.log.Info("node passed its audit", "node", node, "root", root)
		if replaced != "" {
			c.log.Info("rebalanced: holding moved", "root", root, "from", replaced, "to", node)
		}
		if kept != "" {
			c.log.Info("rebalancing move kept its source: the root would be short without it", "root", root, "source", kept, "to", node)
		}
		c.emit(c.ctx, "content.replicated/"+root+"/"+node+"/"+now.Format(time.RFC3339Nano), events.TypeContentReplicated,
			events.ContentReplicated{Root: root, Node: node, Site: site})
		return
	}
	var ae *AuditError
	block, reason := "", auditErr.Error()
	if errors.As(auditErr, &ae) {
		block, reason = ae.Block, ae.Reason
	}
	c.log.Warn("node failed its audit: holding dropped", "node", node, "root", root, "block", block, "reason", reason)
	c.cfg.Router.Penalize(node, c.cfg.AuditPenalty)
	c.emit(c.ctx, "node.audit_failed/"+root+"/"+node+"/"+now.Format(time.RFC3339Nano), events.TypeNodeAuditFailed,
		events.NodeAuditFailed{Node: node, Root: root, Block: block, Coordinator: c.cfg.ID, Reason: reason})
	if _, err := c.repair(c.ctx, out, false); err != nil {
		c.log.Warn("under-replicated", "root", root, "err", err)
	}
}

// auditLoop audits, about every AuditInterval (jittered), one random
// pinned holding of each node connected here.
func (c *Coordinator) auditLoop() {
	defer c.wg.Done()
	for {
		wait := c.cfg.AuditInterval/2 + rand.N(c.cfg.AuditInterval)
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		held := map[string][]string{}
		c.mu.Lock()
		for _, cp := range c.placements {
			for id, h := range cp.p.Nodes {
				if h.State == HolderPinned && c.conns[id] != nil {
					held[id] = append(held[id], cp.p.Root)
				}
			}
		}
		c.mu.Unlock()
		for id, roots := range held {
			c.startAudit(id, roots[rand.IntN(len(roots))])
		}
	}
}
