package coordinator

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/asn"
)

// Candidate is a node the router may choose for a client.
type Candidate struct {
	Node   string
	Addr   netip.Addr    // the node's public address, for its ASN when ASN is 0
	ASN    uint32        // 0: look Addr up in the table
	Region string        // operator-declared; compared case-insensitively
	Load   float64       // 0 idle … 1 saturated (clamped)
	RTT    time.Duration // known RTT from this client; 0: use reported samples
}

// RouterConfig configures a Router. Every field has a working zero value.
type RouterConfig struct {
	// Table maps addresses to ASNs. Nil: an empty table (no ASN matches;
	// ranking falls back to region, load and RTT).
	Table *asn.Table
	// DefaultRTT is assumed for a node without RTT samples. Default 50 ms.
	DefaultRTT time.Duration
	// LoadWeight scales how much load inflates a node's cost:
	// cost = RTT × (1 + LoadWeight × load). Default 2.
	LoadWeight float64
	// RTTAlpha is the weight of a new sample in the moving average.
	// Default 0.25.
	RTTAlpha float64
	// MaxRTTEntries bounds the (client network, node) RTT averages kept,
	// and as many error averages. Default 1<<20.
	MaxRTTEntries int
	// ErrorWeight scales how much the errors clients report inflate a
	// node's cost: cost × (1 + ErrorWeight × errors). Default 1.
	ErrorWeight float64
}

// Router ranks nodes for a client: nodes under a penalty (Penalize) last,
// then same ASN first, then same region, then
// by cost, an RTT estimate inflated by load. RTT estimates are moving
// averages of the samples clients report, kept per client network (its ASN,
// or its /24 or /48 when the ASN is unknown) and node. Safe for concurrent
// use.
type Router struct {
	cfg RouterConfig

	mu        sync.RWMutex
	rtt       map[rttKey]time.Duration
	errs      map[rttKey]float64   // moving average of reported error levels
	penalties map[string]time.Time // node → until: ranked behind every other node
	now       func() time.Time
}

type rttKey struct {
	asn  uint32
	net  netip.Prefix // when asn is 0
	node string
}

// NewRouter returns a Router for cfg.
func NewRouter(cfg RouterConfig) *Router {
	if cfg.Table == nil {
		cfg.Table = asn.New()
	}
	if cfg.DefaultRTT <= 0 {
		cfg.DefaultRTT = 50 * time.Millisecond
	}
	if cfg.LoadWeight <= 0 {
		cfg.LoadWeight = 2
	}
	if cfg.RTTAlpha <= 0 || cfg.RTTAlpha > 1 {
		cfg.RTTAlpha = 0.25
	}
	if cfg.MaxRTTEntries <= 0 {
		cfg.MaxRTTEntries = 1 << 20
	}
	if cfg.ErrorWeight <= 0 {
		cfg.ErrorWeight = 1
	}
	return &Router{cfg: cfg, rtt: make(map[rttKey]time.Duration), errs: make(map[rttKey]float64),
		penalties: make(map[string]time.Time), now: time.Now}
}

// Penalize ranks node behind every node without a penalty, for every
// client, until d has passed (a node that failed a storage audit).
func (r *Router) Penalize(node string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for n, until := range r.penalties {
		if now.After(until) {
			delete(r.penalties, n)
		}
	}
	r.penalties[node] = now.Add(d)
}

// Penalized reports whether node is ranked down by Penalize now.
func (r *Router) Penalized(node string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.penalizedLocked(node, r.now())
}

func (r *Router) penalizedLocked(node string, now time.Time) bool {
	until, ok := r.penalties[node]
	return ok && now.Before(until)
}

// ClientInfo is what the router knows about a client address.
type ClientInfo struct {
	Addr    netip.Addr
	ASN     uint32 // 0 when unknown
	Country string // from the table; "" when unknown
}

// Client looks ip up in the table.
func (r *Router) Client(ip netip.Addr) ClientInfo {
	ip = ip.Unmap()
	info, _ := r.cfg.Table.Lookup(ip)
	return ClientInfo{Addr: ip, ASN: info.ASN, Country: info.Country}
}

// Rank returns cands ordered best first for the client at ip in region
// (empty: the client's country from the table). cands is not modified.
func (r *Router) Rank(ip netip.Addr, region string, cands []Candidate) []Candidate {
	client := r.Client(ip)
	if region == "" {
		region = client.Country
	}
	clientNet := clientNetwork(client)
	type scored struct {
		c       Candidate
		penalty bool
		sameASN bool
		sameReg bool
		cost    float64
	}
	ss := make([]scored, len(cands))
	r.mu.RLock()
	now := r.now()
	for i, c := range cands {
		a := c.ASN
		if a == 0 && c.Addr.IsValid() {
			a = r.cfg.Table.ASN(c.Addr)
		}
		rtt := c.RTT
		if rtt <= 0 {
			var ok bool
			if rtt, ok = r.rtt[rttKey{asn: clientNet.asn, net: clientNet.net, node: c.Node}]; !ok {
				rtt = r.cfg.DefaultRTT
			}
		}
		load := min(max(c.Load, 0), 1)
		errs := r.errs[rttKey{asn: clientNet.asn, net: clientNet.net, node: c.Node}]
		ss[i] = scored{
			c:       c,
			penalty: r.penalizedLocked(c.Node, now),
			sameASN: client.ASN != 0 && a == client.ASN,
			sameReg: region != "" && strings.EqualFold(c.Region, region),
			cost:    float64(rtt) * (1 + r.cfg.LoadWeight*load) * (1 + r.cfg.ErrorWeight*errs),
		}
	}
	r.mu.RUnlock()
	slices.SortStableFunc(ss, func(x, y scored) int {
		if x.penalty != y.penalty {
			if y.penalty {
				return -1
			}
			return 1
		}
		if x.sameASN != y.sameASN {
			if x.sameASN {
				return -1
			}
			return 1
		}
		if x.sameReg != y.sameReg {
			if x.sameReg {
				return -1
			}
			return 1
		}
		if x.cost != y.cost {
			if x.cost < y.cost {
				return -1
			}
			return 1
		}
		return strings.Compare(x.c.Node, y.c.Node)
	})
	out := make([]Candidate, len(ss))
	for i, s := range ss {
		out[i] = s.c
	}
	return out
}

// ReportRTT adds a client-measured round-trip time to node. Samples outside
// (0, 1 min] are ignored.
func (r *Router) ReportRTT(ip netip.Addr, node string, rtt time.Duration) {
	if rtt <= 0 || rtt > time.Minute || node == "" {
		return
	}
	k := clientNetwork(r.Client(ip))
	k.node = node
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.rtt[k]
	if !ok {
		if len(r.rtt) >= r.cfg.MaxRTTEntries {
			for victim := range r.rtt { // evict an arbitrary entry
				delete(r.rtt, victim)
				break
			}
		}
		r.rtt[k] = rtt
		return
	}
	a := r.cfg.RTTAlpha
	r.rtt[k] = time.Duration(a*float64(rtt) + (1-a)*float64(old))
}

// MaxReportedErrors caps one error level sample of ReportErrors.
const MaxReportedErrors = 100

// ReportErrors adds a client's current error level for node (a decaying
// count of its failures as the client saw them: bad blocks, resets,
// stalls; 0 when it served well). The router keeps a moving average per
// client network and node, like RTTs, and inflates the node's cost by
// (1 + ErrorWeight × average) for clients of that network. Samples are
// clamped to [0, MaxReportedErrors]; NaN is ignored.
func (r *Router) ReportErrors(ip netip.Addr, node string, errs float64) {
	if node == "" || errs != errs {
		return
	}
	errs = min(max(errs, 0), MaxReportedErrors)
	k := clientNetwork(r.Client(ip))
	k.node = node
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.errs[k]
	if !ok {
		if errs == 0 {
			return // nothing to remember
		}
		if len(r.errs) >= r.cfg.MaxRTTEntries {
			for victim := range r.errs {
				delete(r.errs, victim)
				break
			}
		}
		r.errs[k] = errs
		return
	}
	a := r.cfg.RTTAlpha
	v := a*errs + (1-a)*old
	if v < 0.01 {
		delete(r.errs, k)
		return
	}
	r.errs[k] = v
}

// Errors returns the averaged error level reported from ip's network for
// node (0 when none).
func (r *Router) Errors(ip netip.Addr, node string) float64 {
	k := clientNetwork(r.Client(ip))
	k.node = node
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.errs[k]
}

// RTT returns the averaged RTT from ip's network to node, if any.
func (r *Router) RTT(ip netip.Addr, node string) (time.Duration, bool) {
	k := clientNetwork(r.Client(ip))
	k.node = node
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.rtt[k]
	return d, ok
}

func clientNetwork(c ClientInfo) rttKey {
	if c.ASN != 0 {
		return rttKey{asn: c.ASN}
	}
	if !c.Addr.IsValid() {
		return rttKey{}
	}
	bits := 48
	if c.Addr.Is4() {
		bits = 24
	}
	p, _ := c.Addr.Prefix(bits)
	return rttKey{net: p}
}
