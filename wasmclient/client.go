package wasmclient

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/webfile"
	"github.com/verity-cdn/verity/internal/wire"
)

// Client serves GET requests for one site origin from the session's nodes,
// verifying everything. It is safe for concurrent use.
type Client struct {
	cfg      Config
	sessions *sessionCache
	stats    *Stats
	scores   *Scores
	dirs     dirCache // directories Resolve fetched

	ctx    context.Context // cancelled by Close; parent of report calls
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu              sync.Mutex
	dropped         map[string]time.Time // node id → skipped until
	lastSave        time.Time            // last scores save
	lastScoreReport time.Time            // last scores report
	flushing        bool                 // a scores save/report runs

	payer *payer // nil with Config.NoPayments
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	cfg = cfg.normalize()
	if cfg.Session == nil {
		return nil, errors.New("wasmclient: Config.Session is required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:      cfg,
		sessions: &sessionCache{loader: cfg.Session, now: cfg.Now, defaultTTL: cfg.SessionTTL},
		stats:    &Stats{Limit: cfg.History},
		scores:   newScores(cfg),
		ctx:      ctx,
		cancel:   cancel,
		dropped:  make(map[string]time.Time),
	}
	c.sessions.revalidate = func() {
		if c.ctx.Err() == nil { // not after Close, which waits for c.wg
			c.background(c.sessions.revalidated)
		}
	}
	if !cfg.NoPayments {
		c.payer = &payer{now: cfg.Now}
		c.sessions.payer = c.payer
		c.payer.ahead = func() {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				ctx, cancel := WithTimeout(c.ctx, aheadTimeout)
				defer cancel()
				c.sessions.ahead(ctx)
				c.payer.aheadDone()
			}()
		}
	}
	c.loadScores()
	return c, nil
}

// Scores returns the client's per-node scores.
func (c *Client) Scores() *Scores { return c.scores }

// Stats returns the client's request records and reports.
func (c *Client) Stats() *Stats { return c.stats }

// Close stops pending reports and waits for them. It is idempotent.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// NoteRoot records the root the worker script's own session load found
// (it keeps a copy of the session for its cache): when the session held
// here names another root, the next request reloads it first, so a page
// the script answered under the new root gets no file of the old one.
func (c *Client) NoteRoot(root string) {
	if root != "" {
		c.sessions.note(root)
	}
}

// Session returns the current session (loading it if needed).
func (c *Client) Session(ctx context.Context) (*Session, error) {
	s, _, err := c.sessions.get(ctx)
	return s, err
}

// source is one way to get the content: a transport to a node, or the
// gateway fallback.
type source struct {
	transport Transport
	node      Node
	gateway   bool
	patient   bool // asked again after it was given up as quiet: waited for
}

func (c *Client) sources(sess *Session) []source {
	var out []source
	if c.payer != nil && c.payer.isFrozen() {
		// Nodes refuse a frozen account: the gateway path only.
		sess = &Session{Fallback: sess.Fallback}
	}
	for _, n := range c.scores.Rank(sess.Nodes) {
		for _, t := range c.cfg.Transports {
			out = append(out, source{transport: t, node: n})
		}
	}
	if c.cfg.Fallback != nil {
		fb := sess.Fallback
		if fb == "" {
			fb = DefaultFallback
		}
		// The fallback is the /ipfs namespace of a trustless gateway; the
		// transport appends targets that start with "/ipfs/".
		base := strings.TrimSuffix(strings.TrimSuffix(fb, "/"), "/ipfs")
		out = append(out, source{transport: c.cfg.Fallback, node: Node{ID: GatewayNodeID, HTTP: base}, gateway: true})
	}
	return out
}

func (c *Client) isDropped(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.dropped[id]
	if !ok {
		return false
	}
	if !c.cfg.Now().Before(until) {
		delete(c.dropped, id)
		return false
	}
	return true
}

func (c *Client) drop(id string) {
	c.mu.Lock()
	c.dropped[id] = c.cfg.Now().Add(c.cfg.DropFor)
	c.mu.Unlock()
}

func (c *Client) report(r Report) {
	r.At = c.cfg.Now().UnixMilli()
	c.stats.addReport(r)
	c.cfg.Logger.Warn("node reported", "node", r.Node, "reason", r.Reason, "detail", r.Detail)
	if c.cfg.Reporter == nil || c.ctx.Err() != nil {
		return
	}
	c.background(func(ctx context.Context) {
		if err := c.cfg.Reporter.Report(ctx, r); err != nil {
			c.cfg.Logger.Debug("report not delivered", "err", err)
		}
	})
}

// background runs fn in a goroutine Close waits for, with a context that
// ends at Close or after ReportTimeout.
func (c *Client) background(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := WithTimeout(c.ctx, c.cfg.ReportTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// Fetch serves one GET. It returns once the first source has delivered the
// verified entity root (so headers can be sent), or an error when no source
// could; map the error with HTTPStatus or ErrorResponse. ctx bounds the whole
// request, body included.
func (c *Client) Fetch(ctx context.Context, req FetchRequest) (*Response, error) {
	f := &fetch{c: c, ctx: ctx, start: c.cfg.Now()}
	f.rec.URL = req.URL
	if f.rec.URL == "" {
		f.rec.URL = req.Path
	}
	resp, err := f.run(req)
	if err != nil {
		f.rec.Status = HTTPStatus(err)
		f.rec.Error = err.Error()
		f.rec.TTFBMs = c.cfg.Now().Sub(f.start).Milliseconds()
		f.rec.Blocks = f.blocks.Load()
		c.stats.addRequest(f.rec)
		return nil, err
	}
	return resp, nil
}

// fetch is the state of one request, shared by Fetch and the body.
type fetch struct {
	c     *Client
	ctx   context.Context
	start time.Time
	sess  *Session
	past  bool // sess was held past its ttl (sessionCache.get)
	segs  []string
	srcs  []source
	next  int

	avoid     string   // a node left for being slow: none of its other sources
	retry     *source  // source to try again first (it failed while idle)
	quiet     []source // sources given up before their head came, to ask again last
	slow      []source // sources left mid-body for their rate, asked again after quiet
	attempts  []*SourceError
	notFound  bool
	failovers int
	blocks    atomic.Int64
	entity    verify.Entity
	rec       RequestRecord
}

func (f *fetch) run(req FetchRequest) (*Response, error) {
	segs, dir, err := webfile.SplitPath(req.Path)
	if err != nil {
		return nil, errfmt.Errorf("%w: %s", ErrBadPath, req.Path)
	}
	if dir {
		segs = append(segs, webfile.IndexFile)
	}
	spec, ranged := webfile.ParseSpec(req.Range)
	var rng *verify.ByteRange
	if ranged {
		from, to := spec.EntityBytes()
		rng = &verify.ByteRange{From: from, To: to}
	}
	sess, past, err := f.c.sessions.get(f.ctx)
	if err != nil {
		return nil, err
	}
	f.sess, f.past, f.segs, f.srcs = sess, past, segs, f.c.sources(sess)

	for {
		src, ok := f.nextSource()
		if !ok {
			return nil, f.exhausted()
		}
		a, ent, err := f.open(src, rng)
		if err == nil && rng != nil && ent.Kind == verify.KindFile && !webfile.IfRange(req.IfRange, etagOf(ent)) {
			// The range was for another version: ask the same source for
			// the whole entity.
			a.close()
			rng, ranged = nil, false
			f.retry = &src
			continue
		}
		if err != nil {
			if errors.Is(err, verify.ErrNotFound) { // proven absent by verified blocks
				f.rec.Transport, f.rec.Node = src.transport.Name(), src.node.ID
				return nil, errfmt.Errorf("%w: %s", ErrNotFound, req.Path)
			}
			f.fail(a, err)
			continue
		}
		f.entity = ent
		return f.respond(req, a, spec, ranged)
	}
}

// respond builds the response once a source has resolved the entity.
func (f *fetch) respond(req FetchRequest, a *attempt, spec webfile.Spec, ranged bool) (*Response, error) {
	ent := f.entity
	ttfb := f.c.cfg.Now().Sub(f.start).Milliseconds()
	name, node := a.src.transport.Name(), a.src.node.ID
	resp := &Response{
		ContentLength: -1,
		Transport:     name,
		Node:          node,
		ServerTiming:  serverTiming(name, node, f.blocks.Load(), ttfb),
		Root:          f.sess.Root,
		Stale:         f.past,
	}
	f.rec.Transport, f.rec.Node, f.rec.TTFBMs = name, node, ttfb

	switch ent.Kind {
	case verify.KindFile:
	case verify.KindDirectory:
		a.close()
		loc := req.Path + "/"
		if req.Query != "" {
			loc += "?" + req.Query
		}
		resp.Status, resp.Location, resp.ContentLength = 301, loc, 0
		resp.Body = emptyBody()
		f.finish(resp.Status, 0, nil)
		return resp, nil
	default:
		a.close()
		return nil, errfmt.Errorf("%w: %s", ErrUnsupported, req.Path)
	}

	resp.ETag = etagOf(ent)
	resp.ContentType = webfile.ContentType(f.segs[len(f.segs)-1])
	if req.IfNoneMatch != "" && etagMatches(req.IfNoneMatch, resp.ETag) {
		a.close()
		resp.Status, resp.ContentType = 304, ""
		resp.Body = emptyBody()
		f.finish(resp.Status, 0, nil)
		return resp, nil
	}

	size := ent.Size
	from, to := int64(0), size-1
	resp.Status = 200
	if ranged {
		rg, err := spec.Resolve(size)
		var ue *webfile.UnsatisfiableError
		if errors.As(err, &ue) {
			a.close()
			resp.Status, resp.ContentLength = 416, 0
			resp.ContentType = ""
			resp.ContentRange = ue.ContentRange()
			resp.Body = emptyBody()
			f.finish(resp.Status, 0, nil)
			return resp, nil
		}
		from, to = rg.Start, rg.End
		resp.Status = 206
		resp.ContentRange = rg.ContentRange(size)
	}
	resp.ContentLength = to - from + 1
	if resp.ContentLength < 0 {
		resp.ContentLength = 0
	}
	f.rec.Status = resp.Status
	if pb := f.newParallel(a, from, to); pb != nil {
		resp.Body = pb
		return resp, nil
	}
	b := &body{f: f, cur: a, from: from, to: to, remaining: resp.ContentLength}
	if b.remaining == 0 {
		b.closeCurrent()
	}
	resp.Body = b
	return resp, nil
}

// etagOf is the strong ETag of an entity: its CID, quoted.
func etagOf(e verify.Entity) string { return `"` + e.CID.String() + `"` }

func emptyBody() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

func (f *fetch) nextSource() (source, bool) {
	if f.retry != nil {
		s := *f.retry
		f.retry = nil
		return s, true
	}
	for f.next < len(f.srcs) {
		s := f.srcs[f.next]
		f.next++
		if f.usable(s) {
			return s, true
		}
	}
	if s, ok := pop(&f.quiet); ok {
		return s, true
	}
	return pop(&f.slow)
}

// pop takes the first source of l.
func pop(l *[]source) (source, bool) {
	if len(*l) == 0 {
		return source{}, false
	}
	s := (*l)[0]
	*l = (*l)[1:]
	return s, true
}

func (f *fetch) exhausted() error {
	return &FetchError{Attempts: f.attempts, NotFound: f.notFound}
}

// open opens src for rng and waits for the entity to be verified. The
// returned attempt is never nil; on error it is closed already. While
// another source remains, a source whose response head has not come
// within QuietTimeout is given up: a node that takes a request and
// answers nothing costs the request that, not OpenTimeout. fail counts
// such a source quiet, not failed, and nextSource asks it again, waiting,
// once every other source has failed.
func (f *fetch) open(src source, rng *verify.ByteRange) (*attempt, verify.Entity, error) {
	var giveUp time.Duration
	if !src.patient && f.hasNext() {
		giveUp = f.c.cfg.QuietTimeout
	}
	return f.openIn(f.ctx, src, rng, giveUp)
}

// hasNext reports whether nextSource has a source left.
func (f *fetch) hasNext() bool {
	if f.retry != nil || len(f.quiet) > 0 || len(f.slow) > 0 {
		return true
	}
	for _, s := range f.srcs[f.next:] {
		if f.usable(s) {
			return true
		}
	}
	return false
}

// usable reports whether nextSource may return s: the gateway always, a
// node unless it is dropped or was left for being slow.
func (f *fetch) usable(s source) bool {
	return s.gateway || (s.node.ID != f.avoid && !f.c.isDropped(s.node.ID))
}

// otherNodeRate reports whether a source of another node than id, or the
// gateway, is left to ask: one not asked yet, or one given up before its
// head came (it may only have been late), not one left for its rate; and
// the best throughput this worker measured lately from such a node (0:
// none; Scores.FreshThroughput).
func (f *fetch) otherNodeRate(id string) (best float64, ok bool) {
	n := len(f.srcs) - f.next
	for i := range n + len(f.quiet) {
		var s source
		if i < n {
			if s = f.srcs[f.next+i]; !f.usable(s) {
				continue
			}
		} else {
			s = f.quiet[i-n]
		}
		if s.node.ID != id {
			ok = true
			if r := f.c.scores.FreshThroughput(s.node.ID); r > best {
				best = r
			}
		}
	}
	return best, ok
}

// openIn is open with the attempt's context derived from ctx, giving the
// source up when its response head has not come after giveUp (0: never).
func (f *fetch) openIn(ctx context.Context, src source, rng *verify.ByteRange, giveUp time.Duration) (*attempt, verify.Entity, error) {
	actx, cancel := context.WithCancel(ctx)
	a := &attempt{src: src, cancel: cancel, started: f.c.cfg.Now()}
	a.mu.Lock()
	a.timer = time.AfterFunc(f.c.cfg.OpenTimeout, a.expire)
	a.mu.Unlock()
	if giveUp > 0 {
		t := time.AfterFunc(giveUp, func() {
			if a.phase.CompareAndSwap(attemptOpening, attemptQuiet) {
				a.close()
			}
		})
		defer t.Stop()
	}
	vreq := verify.Request{Root: f.sess.RootCID(), Path: f.segs, Range: rng}
	var (
		rc  io.ReadCloser
		err error
	)
	if _, ok := src.transport.(PaidTransport); ok && !src.gateway && f.c.payer != nil {
		a.pay = f.c.payer.stream(src.node.ID)
	}
	if a.pay != nil {
		rc, err = src.transport.(PaidTransport).OpenPaid(actx, src.node, vreq.Target(), a.pay)
	} else {
		rc, err = src.transport.Open(actx, src.node, vreq.Target())
	}
	if !a.phase.CompareAndSwap(attemptOpening, attemptAnswered) {
		// Given up before its head came (whatever err says now).
		if err == nil {
			_ = rc.Close()
		}
		a.close()
		return a, verify.Entity{}, errQuiet
	}
	if err != nil {
		a.close()
		return a, verify.Entity{}, err
	}
	if !a.setBody(rc) {
		return a, verify.Entity{}, context.Canceled
	}
	opts := verify.Options{
		OnBlock: func(_ cid.CID, n int) {
			f.blocks.Add(1)
			if a.pay != nil {
				a.pay.Verified(n)
			}
		},
	}
	if eb, ok := rc.(encodedBody); ok {
		// Raw leaves arrive in 16 KiB groups, each released once verified
		// (with slices, only those of a range's first and last leaf that
		// the range covers); receipts still follow whole blocks (OnBlock).
		switch eb.BlockEncoding() {
		case wire.BlocksBao16:
			opts.Bao = true
		case wire.BlocksBao16Slices:
			opts.Slices = true
		}
	}
	a.vr = verify.NewReader(a.body, vreq, opts)
	ent, err := a.vr.Entity()
	if err != nil {
		a.close()
		return a, ent, err
	}
	a.disarm()
	a.lastUse = f.c.cfg.Now()
	a.reading = a.lastUse
	a.slack = f.c.cfg.QuietTimeout
	f.c.scores.ObserveOpen(src.node.ID, a.lastUse.Sub(a.started))
	return a, ent, nil
}

// renewVoucher reports whether a failed because the worker stopped paying
// on it (its signer refused: the voucher's per-node cap spent, or the
// voucher expired) and a new voucher is now installed, loaded with the
// session (the signer's refusal asked for it).
func (f *fetch) renewVoucher(a *attempt) bool {
	if a.pay == nil || !a.pay.failed() || f.ctx.Err() != nil || f.c.payer == nil {
		return false
	}
	if _, _, err := f.c.sessions.get(f.ctx); err != nil {
		return false
	}
	return f.c.payer.stream(a.src.node.ID) != nil
}

// fail records the failure of attempt a: reports and drops the node unless
// the source merely does not have the content, or the request was cancelled.
func (f *fetch) fail(a *attempt, err error) {
	if errors.Is(err, ErrNoAddress) {
		return
	}
	reason := classify(a, err)
	se := &SourceError{Transport: a.src.transport.Name(), Node: a.src.node.ID, Reason: reason, Err: err}
	if a.phase.Load() == attemptQuiet {
		// Given up before its head came: slow, which is not wrong. Not
		// reported; dropped like a failed node (its session may be
		// wedged: forgotten), scored slow, and asked again, waiting, if
		// every other source fails.
		se.Reason, se.Err = ReasonTimeout, errQuiet
		f.attempts = append(f.attempts, se)
		if f.ctx.Err() == nil {
			f.c.scores.ObserveOpen(a.src.node.ID, f.c.cfg.Now().Sub(a.started))
			f.c.setAside(a.src)
			f.askLast(a.src, false)
		}
		return
	}
	f.attempts = append(f.attempts, se)
	f.c.cfg.Logger.Debug("source failed", "transport", se.Transport, "node", se.Node, "reason", reason, "err", err)
	if f.ctx.Err() != nil {
		return
	}
	if reason == reasonNotFound {
		f.notFound = true
		return
	}
	if a.pay != nil && a.pay.failed() {
		// The worker stopped paying (budget spent, voucher expired) and
		// the node cut the stream: not the node's fault.
		return
	}
	if se := (*wire.StatusError)(nil); errors.As(err, &se) && se.Status == 402 {
		// The node refused our payment, not the content: no report.
		if f.c.payer != nil {
			f.c.payer.onRefused(se.PaymentCode)
		}
		return
	}
	if a.src.gateway || bridgeFault(a, err) {
		// The gateway is never dropped; a bridge that went, or gave up on
		// a worker reading slowly, is not the node's doing: the next
		// attempt takes another bridge.
		return
	}
	f.c.setAside(a.src)
	f.c.scores.ObserveError(a.src.node.ID)
	c := f.sess.Root
	if f.entity.Kind != 0 {
		c = f.entity.CID.String()
	}
	detail := err.Error()
	if len(detail) > 512 {
		detail = detail[:512]
	}
	f.c.report(Report{Node: a.src.node.ID, CID: c, Reason: reason, Detail: detail})
}

// setAside skips src's node for DropFor and has its transport forget the
// node's session, which may be wedged: the next use opens a new one.
func (c *Client) setAside(src source) {
	c.drop(src.node.ID)
	if fg, ok := src.transport.(nodeForgetter); ok {
		fg.ForgetNode(src.node.ID)
	}
}

// askLast has nextSource return src again, waited for, once every other
// source has failed: a source given up for being slow is not a failed one.
// One left mid-body for its rate (slow) comes after those given up before
// their head: it is known to be slow, they may only have been late (on a
// loaded machine a trickling node asked again first held the body to the
// end, the others' heads never waited for).
func (f *fetch) askLast(src source, slow bool) {
	src.patient = true
	if slow {
		f.slow = append(f.slow, src)
	} else {
		f.quiet = append(f.quiet, src)
	}
}

// bridgeFault reports whether a failed because its bridging page went or
// gave up (ErrBridgeGone, ErrBridgeOverrun): in err, or as the transport's
// own read error, which the verifier reports only as text (a mid-stream
// failure is a verify.ErrTruncated naming the block it cut).
func bridgeFault(a *attempt, err error) bool {
	bridge := func(e error) bool { return errors.Is(e, ErrBridgeGone) || errors.Is(e, ErrBridgeOverrun) }
	if bridge(err) {
		return true
	}
	a.mu.Lock()
	b := a.body
	a.mu.Unlock()
	return b != nil && bridge(b.readErr())
}

// finish records the request's final stats once.
func (f *fetch) finish(status int, bytes int64, err error) {
	f.rec.Status = status
	f.rec.Bytes = bytes
	f.rec.Blocks = f.blocks.Load()
	f.rec.Failovers = f.failovers
	if err != nil {
		f.rec.Error = err.Error()
	}
	f.c.stats.addRequest(f.rec)
	f.c.flushScores()
}

// nodeForgetter is the optional capability of a transport that keeps
// per-node state (a WebTransport session): it is told when a node failed so
// the next use reconnects.
type nodeForgetter interface {
	ForgetNode(id string)
}

const reasonNotFound = "not-found"

// classify names why an attempt failed.
func classify(a *attempt, err error) string {
	var se *wire.StatusError
	switch {
	case a.timedOut.Load() || errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &se):
		if se.Status == 404 {
			return reasonNotFound
		}
		return ReasonProtocol
	case a.body == nil:
		var he *wire.HeadError
		if errors.As(err, &he) {
			return ReasonProtocol
		}
		return ReasonUnreachable
	case errors.Is(err, ErrStreamReset), errors.Is(a.body.readErr(), ErrStreamReset):
		return ReasonProtocol
	case a.body.readErr() != nil:
		return ReasonUnreachable
	case errors.Is(err, verify.ErrHashMismatch), errors.Is(err, verify.ErrUnexpectedBlock):
		return ReasonBadBlock
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, verify.ErrTruncated), errors.Is(err, errShortBody),
		errors.Is(err, errEntityChanged), errors.Is(err, verify.ErrMalformed):
		return ReasonProtocol
	default:
		return ReasonBadBlock
	}
}

var (
	errShortBody     = errors.New("source ended before the entity's last byte")
	errEntityChanged = errors.New("source resolved a different entity")
	errCancelled     = errors.New("cancelled before the end of the body")
	errQuiet         = errors.New("no response head in time; another source was asked")
)

// attempt is one open source.
type attempt struct {
	src      source
	cancel   context.CancelFunc
	started  time.Time
	timer    *time.Timer
	timedOut atomic.Bool
	phase    atomic.Int32 // attemptOpening, then attemptAnswered or attemptQuiet
	lastUse  time.Time    // end of the last wait on the source (reader's goroutine only)

	// The body's reader's bookkeeping (its goroutine only): the slack
	// left before the source counts as slow, and the time waited on it
	// and bytes got from it.
	slack     time.Duration
	waited    time.Duration
	got       int64
	slowFired bool      // the slack ran out: the attempt was closed as slow
	floor     float64   // the rate below which the slack runs out
	reading   time.Time // when the entity was verified: the body's bytes come after

	pay *StreamPayment // nil: unpaid

	mu     sync.Mutex
	closed bool
	body   *trackedBody
	vr     *verify.Reader
}

// setBody installs the transport body; false if the attempt was closed
// meanwhile (the body is then closed).
func (a *attempt) setBody(rc io.ReadCloser) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		_ = rc.Close()
		return false
	}
	a.body = &trackedBody{rc: rc}
	return true
}

// expire is the timer's action: the source made no progress in time.
func (a *attempt) expire() {
	a.timedOut.Store(true)
	a.close()
}

// arm restarts the progress timer. It runs only while the client waits on
// the source, so a page that stops reading (backpressure) does not make the
// source look stalled.
func (a *attempt) arm(d time.Duration) {
	if !a.timedOut.Load() {
		a.timer.Reset(d)
	}
}

// disarm stops the progress timer.
func (a *attempt) disarm() { a.timer.Stop() }

// close releases the source. Idempotent, safe from any goroutine.
func (a *attempt) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	b, t := a.body, a.timer
	a.mu.Unlock()
	t.Stop()
	// The body first: a paid stream sends its last receipt and FIN on
	// Close, which cancelling its context first would abort.
	if b != nil {
		_ = b.rc.Close()
	}
	a.cancel()
}

// An attempt's phases: waiting for its response head, then either
// answered (the transport's Open returned) or given up before that.
const (
	attemptOpening int32 = iota
	attemptAnswered
	attemptQuiet
)

// trackedBody remembers the transport's own read error, to tell a broken
// connection from a bad CAR.
type trackedBody struct {
	rc  io.ReadCloser
	n   atomic.Int64 // bytes read from the transport
	mu  sync.Mutex
	err error
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.n.Add(int64(n))
	if err != nil && err != io.EOF {
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
	}
	return n, err
}

func (t *trackedBody) readErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
