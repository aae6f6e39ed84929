package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/wire"
)

func (n *Node) newWebTransportServer() *webtransport.Server {
	mux := http.NewServeMux()
	h3 := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{
			MinVersion:     tls.VersionTLS13,
			GetCertificate: n.certs.getCertificate,
		}),
		QUICConfig: &quic.Config{
			EnableDatagrams:                  true,
			EnableStreamResetPartialDelivery: true,
			MaxIdleTimeout:                   n.cfg.IdleTimeout,
			// One session per connection in practice: its streams plus
			// the CONNECT stream.
			MaxIncomingStreams: int64(n.cfg.MaxStreamsPerSession) + 4,
		},
		Handler:        mux,
		MaxHeaderBytes: n.cfg.MaxHeaderBytes,
		Logger:         n.log,
	}
	webtransport.ConfigureHTTP3Server(h3)
	srv := &webtransport.Server{
		H3: h3,
		// Any origin may open a session: the content is public, every
		// block is verified by the client, and no credentials are
		// involved, so there is nothing for a cross-site request to abuse.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	mux.HandleFunc(WebTransportPath, func(w http.ResponseWriter, r *http.Request) {
		sess, err := srv.Upgrade(w, r)
		if err != nil {
			n.log.Debug("webtransport upgrade failed", "err", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n.serveSession(sess)
	})
	return srv
}

// serveSession serves the streams of one session until it ends.
func (n *Node) serveSession(sess *webtransport.Session) {
	n.metrics.wtSessions.Inc()
	defer n.metrics.wtSessions.Dec()
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	// A node that closes stops serving at once: closing the session
	// resets its streams, so a response in flight fails now (and the
	// client fails over) instead of running to its end inside Close.
	stop := context.AfterFunc(n.ctx, func() {
		cancel()
		_ = sess.CloseWithError(0, "node closing")
	})
	defer stop()

	sem := make(chan struct{}, n.cfg.MaxStreamsPerSession)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		str, err := sess.AcceptStream(ctx)
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			str.CancelRead(wire.CodeCancelled)
			str.CancelWrite(wire.CodeCancelled)
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			n.serveStream(ctx, sess, str)
		})
	}
}

// serveStream reads one wire.Request and answers it through the shared
// handler.
func (n *Node) serveStream(ctx context.Context, sess *webtransport.Session, str *webtransport.Stream) {
	// A stream whose reader went away (a cancelled fetch: STOP_SENDING)
	// ends its work at once, a wait for a receipt included, and frees
	// its place among the session's MaxStreamsPerSession.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(str.Context(), cancel)()
	_ = str.SetReadDeadline(time.Now().Add(n.cfg.ReadHeaderTimeout))
	br := bufio.NewReaderSize(str, 4096)
	req, err := wire.ReadRequest(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			str.CancelWrite(wire.CodeCancelled)
			return
		}
		if isTimeout(err) {
			str.CancelRead(wire.CodeTimeout)
			str.CancelWrite(wire.CodeTimeout)
			return
		}
		str.CancelRead(0)
		n.writeError(str, http.StatusBadRequest, err.Error())
		return
	}
	_ = str.SetReadDeadline(time.Time{})

	blocks := n.blockEncoding(req)
	hctx, obs := outboardsFor(ctx, blocks)
	hr, status, msg := n.wireToHTTP(hctx, req, sess.RemoteAddr().String())
	if hr == nil {
		str.CancelRead(0)
		n.writeError(str, status, msg)
		return
	}
	var paid *paidStream
	var code string
	if hr.URL.Path != nodeproto.ProofPath { // a coordinator's URL proof is not content
		paid, code, err = n.admitStream(req)
	}
	if err != nil {
		str.CancelRead(0)
		n.writePaymentError(str, code, err)
		return
	}

	sw := &streamWriter{n: n, str: str, header: http.Header{}, writeTimeout: n.cfg.WriteTimeout, ctx: ctx, paid: paid, blocks: blocks, outboards: obs, slices: slicePlan(blocks, req)}
	if paid != nil {
		go paid.readReceipts(br)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					n.log.Error("panic serving webtransport stream", "panic", p)
				}
				sw.failed = true
			}
		}()
		n.wtHandler.ServeHTTP(sw, hr)
	}()
	sw.finish()
	if paid != nil {
		// Wait for the client's last receipt and FIN, bounded.
		_ = str.SetReadDeadline(time.Now().Add(n.cfg.Payments.ReceiptTimeout))
		<-paid.done
		str.CancelRead(0)
		paid.end()
	} else {
		// The request is all an unpaid stream reads. Its FIN may come
		// after the head was read, and a receive side never read to its
		// end would keep the stream open and its credit from the client
		// for the rest of the session: a browser, which does not wait for
		// stream credit, would then fail to open streams to this node.
		str.CancelRead(0)
	}
}

// admitStream checks the payment of a request: the session of its voucher,
// nil for an unpaid request the node serves, or the payment code and error
// refusing it.
func (n *Node) admitStream(req *wire.Request) (*paidStream, string, error) {
	enc := req.Header.Get(wire.HeaderVoucher)
	if enc == "" {
		if n.cfg.Payments.Require {
			return nil, wire.PaymentRequired, errPaymentRequired
		}
		n.metrics.unpaidStreams.Inc()
		return nil, "", nil
	}
	ps, err := n.pay.admit(enc)
	if err != nil {
		return nil, payCode(err), err
	}
	paid, err := n.pay.newPaidStream(ps)
	if err != nil {
		return nil, payCode(err), err
	}
	return paid, "", nil
}

// writePaymentError answers 402 naming the payment code.
func (n *Node) writePaymentError(str *webtransport.Stream, code string, err error) {
	n.metrics.refusedStreams.WithLabelValues(code).Inc()
	sw := &streamWriter{str: str, header: http.Header{}, writeTimeout: n.cfg.ReadHeaderTimeout}
	sw.header.Set("Content-Type", "text/plain; charset=utf-8")
	sw.header.Set(wire.HeaderPaymentError, code)
	sw.WriteHeader(http.StatusPaymentRequired)
	_, _ = sw.Write([]byte(err.Error()))
	sw.finish()
}

func (n *Node) writeError(str *webtransport.Stream, status int, msg string) {
	sw := &streamWriter{str: str, header: http.Header{}, writeTimeout: n.cfg.ReadHeaderTimeout}
	sw.header.Set("Content-Type", "text/plain; charset=utf-8")
	sw.WriteHeader(status)
	_, _ = sw.Write([]byte(msg))
	sw.finish()
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// forwardedHeaders are the response header fields copied into the wire
// response head.
var forwardedHeaders = []string{"Content-Type", "Etag", "X-Ipfs-Roots", "Cache-Control", "Content-Range", wire.HeaderPaymentError, wire.HeaderBlocks, wire.HeaderCredit, wire.HeaderReceiptOrder}

// streamWriter is an http.ResponseWriter writing a wire.Response head and
// the body to a WebTransport stream.
type streamWriter struct {
	n            *Node
	str          *webtransport.Stream
	header       http.Header
	writeTimeout time.Duration
	ctx          context.Context
	paid         *paidStream    // nil: not metered
	blocks       string         // the block encoding negotiated ("": plain CAR)
	outboards    *outboards     // the blocks' outboards for enc, kept by the store
	slices       car.Slicer     // the leaves that go as slices (slicePlan), or nil
	enc          *car.BaoWriter // transcodes the body when blocks applies to it

	wroteHeader bool
	status      int
	errBody     int // bytes of a non-2xx body written
	failed      bool
	err         error
	paidErr     error // the payment failure that ended the body
}

var _ http.Flusher = (*streamWriter)(nil)

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	if w.wroteHeader || w.failed {
		return
	}
	if code < 200 { // informational responses are not forwarded
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.blocks != "" {
		w.enc = w.n.bodyEncoder(w.blocks, code, w.header, writerFunc(w.write), w.outboards, w.slices)
	}
	if w.paid != nil {
		w.paid.announce(code, w.header)
	}
	w.setDeadline()
	if _, err := responseHead(code, w.header).WriteTo(w.str); err != nil {
		w.fail(err)
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, w.errOrAbort()
	}
	// boxo marks a CAR stream that failed after the head with this header;
	// what follows is a marker that is not CAR data. Reset instead.
	if w.header.Get("X-Stream-Error") != "" {
		w.fail(errors.New("stream error"))
		return 0, w.err
	}
	if w.status/100 != 2 {
		room := wire.MaxErrorBody - w.errBody
		if room <= 0 {
			return len(p), nil
		}
		q := p
		if len(q) > room {
			q = q[:room]
		}
		w.errBody += len(q)
		if _, err := w.write(q); err != nil {
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
func (w *streamWriter) writeBody(p []byte) (int, error) {
	if w.enc == nil {
		return w.write(p)
	}
	n, err := w.enc.Write(p)
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// writePaid writes p in pieces that each fit the credit window.
func (w *streamWriter) writePaid(p []byte) (int, error) {
	const piece = 64 << 10
	done := 0
	for done < len(p) {
		q := p[done:min(len(p), done+piece)]
		if err := w.paid.credit(w.ctx, len(q)); err != nil {
			w.fail(err)
			w.paidErr = err
			return done, err
		}
		n, err := w.writeBody(q)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (w *streamWriter) write(p []byte) (int, error) {
	w.setDeadline()
	n, err := w.str.Write(p)
	if err != nil {
		w.fail(err)
	}
	return n, err
}

func (w *streamWriter) setDeadline() {
	if w.writeTimeout > 0 {
		_ = w.str.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
}

func (w *streamWriter) fail(err error) {
	if !w.failed {
		w.failed = true
		w.err = err
	}
}

func (w *streamWriter) errOrAbort() error {
	if w.err != nil {
		return w.err
	}
	return errors.New("stream failed")
}

// Flush is a no-op: writes go to the QUIC stream directly.
func (w *streamWriter) Flush() {}

// finish ends the stream: FIN after a complete response, a reset with a
// wire code after a failure.
func (w *streamWriter) finish() {
	if !w.wroteHeader && !w.failed {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil && !w.failed {
		// A CAR that ended inside a section is a failed response.
		if err := w.enc.Close(); err != nil {
			w.fail(err)
		}
	}
	if w.failed || w.header.Get("X-Stream-Error") != "" {
		code := webtransport.StreamErrorCode(wire.CodeInternal)
		switch {
		case w.paidErr != nil:
			code = webtransport.StreamErrorCode(paymentResetCode(w.paidErr))
			w.paid.p.n.metrics.creditCuts.WithLabelValues(resetReason(w.paidErr)).Inc()
		case w.err != nil && isTimeout(w.err):
			code = wire.CodeTimeout
		}
		w.str.CancelWrite(code)
		return
	}
	_ = w.str.Close()
}
