package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/pionlog"
	"github.com/verity-cdn/verity/internal/wire"
)

// ResetPrefix starts the data-channel control frame a node sends when a
// response fails after its head: a text message "VERITY/1 RESET <code>",
// code being a wire stream error code. Binary messages carry the response
// bytes; the channel closes after a complete body or after a reset.
const ResetPrefix = wire.Proto + " RESET "

// transportWebRTC labels the metrics of requests served on data channels.
const transportWebRTC = "webrtc"

// rtcServer owns the node's WebRTC peer connections, all sharing one UDP
// socket.
type rtcServer struct {
	n    *Node
	cfg  WebRTCConfig
	conn net.PacketConn
	mux  *ice.UDPMuxDefault
	api  *webrtc.API

	mu     sync.Mutex
	peers  map[*rtcPeer]struct{}
	closed bool
	wg     sync.WaitGroup // peers and their channels
}

func newRTCServer(n *Node, cfg WebRTCConfig, publicHost string) (*rtcServer, error) {
	conn, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("node: listen webrtc: %w", err)
	}
	lf := pionlog.New(n.log) // pion's logs go with the node's, at Debug but for warnings and errors
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: lf.NewLogger("ice")})

	var se webrtc.SettingEngine
	se.LoggerFactory = lf
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if ip, err := netip.ParseAddr(publicHost); err == nil && ip.IsLoopback() {
		// A loopback node talks to loopback browsers only: offer nothing
		// else, so no ICE traffic leaves the machine.
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return &rtcServer{
		n:     n,
		cfg:   cfg,
		conn:  conn,
		mux:   mux,
		api:   webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		peers: map[*rtcPeer]struct{}{},
	}, nil
}

// close closes every peer, waits for their goroutines and releases the
// socket. It is idempotent.
func (s *rtcServer) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	peers := make([]*rtcPeer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.close()
	}
	s.wg.Wait()
	err := s.mux.Close()
	if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}

// WebRTCAddr is the UDP address shared by every WebRTC peer connection, or
// nil when WebRTC is disabled.
func (n *Node) WebRTCAddr() net.Addr {
	if n.rtc == nil {
		return nil
	}
	return n.rtc.conn.LocalAddr()
}

// AcceptOffer answers a browser's SDP offer (non-trickle: the answer holds
// every candidate). The peer connection then serves one request per data
// channel the browser opens (docs/protocol.md §3). Errors: ErrSDPTooLarge,
// ErrBadSDP, ErrTooManyPeers, ErrWebRTCDisabled, ErrClosed, or ctx's.
func (n *Node) AcceptOffer(ctx context.Context, offer string) (string, error) {
	if n.rtc == nil {
		return "", ErrWebRTCDisabled
	}
	return n.rtc.accept(ctx, offer)
}

func (s *rtcServer) accept(ctx context.Context, offer string) (string, error) {
	if len(offer) > MaxSDPBytes {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrSDPTooLarge, len(offer), MaxSDPBytes)
	}
	if !strings.Contains(offer, "m=application ") {
		return "", fmt.Errorf("%w: no data channel section", ErrBadSDP)
	}
	s.mu.Lock()
	if s.closed || s.n.closed.Load() {
		s.mu.Unlock()
		return "", ErrClosed
	}
	if len(s.peers) >= s.cfg.MaxPeers {
		s.mu.Unlock()
		return "", ErrTooManyPeers
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: s.cfg.ICEServers})
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("node: webrtc peer: %w", err)
	}
	p := &rtcPeer{s: s, pc: pc, activity: make(chan struct{}, 1), done: make(chan struct{})}
	s.peers[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go p.run()

	pc.OnDataChannel(p.onDataChannel)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			p.close()
		}
	})

	answer, err := p.negotiate(ctx, offer)
	if err != nil {
		p.close()
		return "", err
	}
	return answer, nil
}

// rtcPeer is one browser's peer connection.
type rtcPeer struct {
	s  *rtcServer
	pc *webrtc.PeerConnection

	mu       sync.Mutex
	channels int           // data channels being served
	activity chan struct{} // a channel opened or closed
	once     sync.Once
	done     chan struct{} // closed by close
}

func (p *rtcPeer) negotiate(ctx context.Context, offer string) (string, error) {
	err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("node: webrtc answer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-p.done:
		return "", ErrClosed
	}
	return p.pc.LocalDescription().SDP, nil
}

// run closes the peer connection once it has had no data channel for the
// idle timeout.
func (p *rtcPeer) run() {
	defer p.s.wg.Done()
	defer p.close()
	t := time.NewTimer(p.s.cfg.IdleTimeout)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.s.n.ctx.Done():
			return
		case <-p.activity:
			t.Reset(p.s.cfg.IdleTimeout)
		case <-t.C:
			p.mu.Lock()
			busy := p.channels > 0
			p.mu.Unlock()
			if !busy {
				p.s.n.log.Debug("webrtc peer idle; closing")
				return
			}
			t.Reset(p.s.cfg.IdleTimeout)
		}
	}
}

func (p *rtcPeer) close() {
	p.once.Do(func() {
		close(p.done)
		p.s.mu.Lock()
		delete(p.s.peers, p)
		p.s.mu.Unlock()
		_ = p.pc.Close()
	})
}

func (p *rtcPeer) touch(delta int) {
	p.mu.Lock()
	p.channels += delta
	p.mu.Unlock()
	select {
	case p.activity <- struct{}{}:
	default:
	}
}

// onDataChannel starts serving a channel the browser opened. Callbacks must
// not block pion's loops: messages go to a bounded queue and the request is
// served on its own goroutine.
func (p *rtcPeer) onDataChannel(dc *webrtc.DataChannel) {
	c := &rtcChannel{
		peer:   p,
		dc:     dc,
		in:     make(chan []byte, 8),
		opened: make(chan struct{}),
		closed: make(chan struct{}),
		low:    make(chan struct{}, 1),
	}
	dc.OnOpen(func() { close(c.opened) })
	dc.OnClose(func() { c.closeOnce.Do(func() { close(c.closed) }) })
	dc.OnMessage(c.onMessage)
	dc.SetBufferedAmountLowThreshold(bufferLow)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	p.s.mu.Lock()
	if p.s.closed {
		p.s.mu.Unlock()
		_ = dc.Close()
		return
	}
	p.s.wg.Add(1)
	p.s.mu.Unlock()
	p.touch(1)
	go func() {
		defer p.s.wg.Done()
		defer p.touch(-1)
		c.serve()
	}()
}

// Flow control: a writer waits while more than bufferHigh bytes are queued
// and resumes when the queue falls to bufferLow. The low mark keeps
// several of the largest messages queued, so SCTP always has data to send
// while the writer's goroutine waits to be scheduled.
const (
	bufferHigh = 2 << 20
	bufferLow  = 1 << 20
)

// rtcChannel serves the one request of one data channel.
type rtcChannel struct {
	peer *rtcPeer
	dc   *webrtc.DataChannel

	in        chan []byte // request bytes, as received
	overflow  bool        // guarded by mu: the request did not fit in
	mu        sync.Mutex
	pending   []byte // unread part of the current message
	opened    chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	low       chan struct{} // buffered amount fell to bufferLow
}

func (c *rtcChannel) onMessage(m webrtc.DataChannelMessage) {
	if m.IsString {
		return // no control frames from clients in version 1
	}
	select {
	case c.in <- m.Data:
	default:
		// The request head fits in a few messages; a client sending
		// more before its answer is not following the protocol.
		c.mu.Lock()
		c.overflow = true
		c.mu.Unlock()
		select {
		case c.in <- nil: // wake the reader if it waits
		default:
		}
	}
}

var errRequestOverflow = errors.New("node: data channel request too large")

// headReader reads request bytes from the channel's queue until deadline.
type headReader struct {
	c        *rtcChannel
	deadline <-chan time.Time
	ctx      context.Context
}

func (r *headReader) Read(b []byte) (int, error) {
	c := r.c
	for len(c.pending) == 0 {
		c.mu.Lock()
		over := c.overflow
		c.mu.Unlock()
		if over {
			return 0, errRequestOverflow
		}
		select {
		case m := <-c.in:
			c.pending = m
		case <-c.closed:
			return 0, io.EOF
		case <-r.deadline:
			return 0, errTimeout
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// timeoutError is a net.Error-style timeout.
type timeoutError struct{}

func (timeoutError) Error() string { return "node: data channel timeout" }
func (timeoutError) Timeout() bool { return true }

var errTimeout error = timeoutError{}

func (c *rtcChannel) serve() {
	s := c.peer.s
	n := s.n
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
		case <-c.peer.done:
		case <-ctx.Done():
		}
		cancel()
	}()

	readTimer := time.NewTimer(n.cfg.ReadHeaderTimeout)
	defer readTimer.Stop()
	select {
	case <-c.opened:
	case <-c.closed:
		return
	case <-readTimer.C:
		_ = c.dc.Close()
		return
	case <-ctx.Done():
		return
	}

	w := newChannelWriter(ctx, c, s.cfg.IdleTimeout)
	defer func() {
		w.finish()
		if w.paid != nil {
			<-w.paid.done // the receipt reader ends with the channel
			w.paid.end()
		}
	}()
	hrd := &headReader{c: c, deadline: readTimer.C, ctx: ctx}
	br := bufio.NewReaderSize(hrd, 4096)
	req, err := wire.ReadRequest(br)
	if err != nil {
		switch {
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			w.abort(wire.CodeCancelled)
		case isTimeout(err):
			n.log.Debug("webrtc channel sent no request in time")
			w.abort(wire.CodeTimeout)
		default:
			w.plainError(http.StatusBadRequest, err.Error())
		}
		return
	}
	w.n, w.blocks = n, n.blockEncoding(req)
	hctx, obs := outboardsFor(ctx, w.blocks)
	w.outboards, w.slices = obs, slicePlan(w.blocks, req)
	hr, status, msg := n.wireToHTTP(hctx, req, "webrtc")
	if hr == nil {
		w.plainError(status, msg)
		return
	}
	paid, code, err := n.admitStream(req)
	if err != nil {
		n.metrics.refusedStreams.WithLabelValues(code).Inc()
		w.header.Set(wire.HeaderPaymentError, code)
		w.plainError(http.StatusPaymentRequired, err.Error())
		return
	}
	if paid != nil {
		// Receipts follow the head as binary messages until the channel
		// closes.
		hrd.deadline = nil
		w.paid = paid
		go paid.readReceipts(br)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					n.log.Error("panic serving webrtc channel", "panic", p)
				}
				w.fail(errors.New("handler panic"))
			}
		}()
		n.rtcHandler.ServeHTTP(w, hr)
	}()
}

// channelWriter is an http.ResponseWriter writing a wire.Response head and
// the body to a data channel in messages (see msgBuffer), waiting while
// the channel's send buffer is full.
type channelWriter struct {
	n       *Node
	ctx     context.Context
	c       *rtcChannel
	idle    time.Duration
	header  http.Header
	buf     *msgBuffer
	status  int
	errBody int
	wrote   bool
	failed  bool
	err     error
	paid    *paidStream // nil: not metered
	paidErr error
	blocks  string         // the block encoding negotiated ("": plain CAR)
	enc     *car.BaoWriter // transcodes the body when blocks applies to it
	// outboards are the blocks' outboards for enc, kept by the store.
	outboards *outboards
	// slices tells enc which leaves go as slices (slicePlan), or nil.
	slices car.Slicer
}

var _ http.Flusher = (*channelWriter)(nil)

func newChannelWriter(ctx context.Context, c *rtcChannel, idle time.Duration) *channelWriter {
	w := &channelWriter{ctx: ctx, c: c, idle: idle, header: http.Header{}}
	w.buf = &msgBuffer{w: w, size: DataChannelMessageSize, max: messageSize(c.peer.pc)}
	w.buf.size = min(w.buf.size, w.buf.max)
	return w
}

// messageSize is the largest message the node sends on pc's data
// channels: the peer's announced max-message-size (SDP; 64 KiB when it
// announces none), at most MaxDataChannelMessageSize.
func messageSize(pc *webrtc.PeerConnection) int {
	size := MaxDataChannelMessageSize
	if t := pc.SCTP(); t != nil {
		if m := int(t.GetCapabilities().MaxMessageSize); m > 0 {
			size = min(size, m)
		}
	}
	return size
}

func (w *channelWriter) Header() http.Header { return w.header }

func (w *channelWriter) WriteHeader(code int) {
	if w.wrote || w.failed || code < 200 {
		return
	}
	w.wrote = true
	w.status = code
	if w.blocks != "" {
		w.enc = w.n.bodyEncoder(w.blocks, code, w.header, w.buf, w.outboards, w.slices)
	}
	if w.paid != nil {
		w.paid.announce(code, w.header)
	}
	if _, err := responseHead(code, w.header).WriteTo(w.buf); err != nil {
		w.fail(err)
	}
}

func (w *channelWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, w.err
	}
	// boxo marks a CAR stream that failed after the head with this header;
	// what follows is not CAR data.
	if w.header.Get("X-Stream-Error") != "" {
		w.fail(errors.New("stream error"))
		return 0, w.err
	}
	if w.status/100 != 2 {
		room := wire.MaxErrorBody - w.errBody
		q := p[:min(len(p), max(room, 0))]
		w.errBody += len(q)
		if _, err := w.buf.Write(q); err != nil {
			w.fail(err)
			return 0, err
		}
		return len(p), nil
	}
	if w.paid != nil {
		return w.writePaid(p)
	}
	return w.writeBody(p)
}

// writeBody writes body bytes, through the block encoding if any.
func (w *channelWriter) writeBody(p []byte) (int, error) {
	var out io.Writer = w.buf
	if w.enc != nil {
		out = w.enc
	}
	n, err := out.Write(p)
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// writePaid writes p in pieces that each fit the credit window.
func (w *channelWriter) writePaid(p []byte) (int, error) {
	const piece = 64 << 10
	done := 0
	for done < len(p) {
		q := p[done:min(len(p), done+piece)]
		if !w.paid.tryCredit(len(q)) {
			// What waits in the message buffer may complete the block
			// the client's next receipt is for: send it, then wait.
			if err := w.buf.Flush(); err != nil {
				w.fail(err)
				return done, err
			}
			if err := w.paid.credit(w.ctx, len(q)); err != nil {
				w.paidErr = err
				w.fail(&resetCode{int(paymentResetCode(err))})
				return done, err
			}
		}
		n, err := w.writeBody(q)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Flush sends what is buffered.
func (w *channelWriter) Flush() {
	if !w.failed {
		if err := w.buf.Flush(); err != nil {
			w.fail(err)
		}
	}
}

func (w *channelWriter) fail(err error) {
	if !w.failed {
		w.failed = true
		w.err = err
	}
}

func (w *channelWriter) plainError(status int, msg string) {
	w.header.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// abort ends the channel with a reset control frame.
func (w *channelWriter) abort(code int) {
	w.fail(errors.New("aborted"))
	w.err = &resetCode{code}
}

type resetCode struct{ code int }

func (r *resetCode) Error() string { return "reset " + strconv.Itoa(r.code) }

// finish ends the channel: after a complete response, once every byte has
// left the send buffer; after a failure, with a reset control frame.
func (w *channelWriter) finish() {
	dc := w.c.dc
	if !w.wrote && !w.failed {
		w.WriteHeader(http.StatusOK)
	}
	if !w.failed && w.header.Get("X-Stream-Error") != "" {
		w.fail(errors.New("stream error"))
	}
	if w.enc != nil && !w.failed {
		// A CAR that ended inside a section is a failed response.
		if err := w.enc.Close(); err != nil {
			w.fail(err)
		}
	}
	// What is buffered is valid up to the failure: send it, then the
	// reset, so the client sees how far the response got.
	if err := w.buf.Flush(); err != nil {
		w.fail(err)
	}
	if w.failed {
		code := wire.CodeInternal
		var rc *resetCode
		switch {
		case errors.As(w.err, &rc):
			code = rc.code
		case isTimeout(w.err):
			code = wire.CodeTimeout
		case w.ctx.Err() != nil:
			code = wire.CodeCancelled
		}
		_ = dc.SendText(ResetPrefix + strconv.Itoa(code))
	}
	// Closing resets the SCTP stream; let the queued messages go first.
	deadline := time.Now().Add(w.idle)
	for dc.BufferedAmount() > 0 && time.Now().Before(deadline) && w.ctx.Err() == nil {
		select {
		case <-w.c.closed:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	_ = dc.Close()
}

// msgBuffer gathers a response's bytes into data-channel messages. A
// message leaves when it reaches the current size, or on Flush; the size
// starts at DataChannelMessageSize and doubles with each message up to
// max (messageSize), so the head and the first bytes of a body leave at
// once and the bulk goes in messages of max bytes: per message, the
// browser's data channel, the page's bridge and the worker each pay a
// fixed cost, a cross-thread hop among them.
type msgBuffer struct {
	w    *channelWriter
	buf  []byte
	size int // size of the next message
	max  int
}

func (b *msgBuffer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(b.buf) == 0 && len(p) >= b.size {
			// A whole message: send it from p (Send copies).
			k := b.size
			if err := b.send(p[:k]); err != nil {
				return n, err
			}
			n, p = n+k, p[k:]
			continue
		}
		k := min(len(p), b.size-len(b.buf))
		b.buf = append(b.buf, p[:k]...)
		n, p = n+k, p[k:]
		if len(b.buf) == b.size {
			if err := b.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Flush sends what is buffered as one message.
func (b *msgBuffer) Flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	err := b.send(b.buf)
	b.buf = b.buf[:0]
	return err
}

// send sends one message once the channel's send buffer has room, and
// grows the size of the next one.
func (b *msgBuffer) send(m []byte) error {
	w := b.w
	dc := w.c.dc
	if dc.BufferedAmount() > bufferHigh {
		t := time.NewTimer(w.idle)
		defer t.Stop()
		for dc.BufferedAmount() > bufferHigh {
			select {
			case <-w.c.low:
			case <-t.C:
				return errTimeout
			case <-w.ctx.Done():
				return w.ctx.Err()
			}
		}
	}
	if err := dc.Send(m); err != nil {
		return err
	}
	b.size = min(b.size*2, b.max)
	return nil
}

// relayedOffer answers offers the coordinator relays, with the refusal
// codes of the signaling protocol; nil when WebRTC is disabled.
func (n *Node) relayedOffer() func(context.Context, string) (string, error) {
	if n.rtc == nil {
		return nil
	}
	return func(ctx context.Context, sdp string) (string, error) {
		answer, err := n.AcceptOffer(ctx, sdp)
		switch {
		case err == nil:
			return answer, nil
		case errors.Is(err, ErrSDPTooLarge), errors.Is(err, ErrBadSDP):
			return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBadSDP, Message: err.Error()}
		case errors.Is(err, ErrTooManyPeers):
			return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBusy, Message: err.Error()}
		case errors.Is(err, ErrWebRTCDisabled):
			return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeDisabled, Message: err.Error()}
		}
		n.log.Warn("webrtc offer failed", "err", err)
		return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeInternal, Message: "internal error"}
	}
}
