package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	"github.com/quic-go/webtransport-go"

	_ "github.com/verity-cdn/verity/internal/blake3mh" // zeebo/blake3 for block checks
	"github.com/verity-cdn/verity/internal/noderecord"
	_ "github.com/verity-cdn/verity/internal/rawcodec" // raw leaves decoded in one copy when served
)

// WebTransportPath is the path of the WebTransport session endpoint.
const WebTransportPath = "/verity/v1"

// Node is a storage node. Create it with New, serve with Run, stop with
// Close.
type Node struct {
	cfg  Config
	log  *slog.Logger
	priv ed25519.PrivateKey
	id   string

	ds       *flatfs.Datastore
	files    *blockFiles   // block files imports write themselves (blockfile.go)
	unsynced unsyncedFiles // block files written by imports and not synced yet (store.go)
	bs       blockstore.Blockstore
	checked  *checkedBlockstore // under bs: its small-block cache (forget)
	metrics  *metrics
	certs    *certManager

	httpLn  net.Listener
	udpConn net.PacketConn
	httpURL string
	wtURL   string

	handler   http.Handler // shared router
	httpSrv   *http.Server
	wtSrv     *webtransport.Server
	wtHandler http.Handler // router instrumented for webtransport

	pinMu      sync.Mutex
	pins       map[string]bool                 // roots placed here and held, in DataDir/pins.json
	localPins  map[string]bool                 // roots the operator imported, kept regardless
	unpinHook  func(root string, unpin func()) // tests only (export_test.go); pinMu
	beforeSync func(paths []string)            // tests only (export_test.go)
	gcMu       sync.RWMutex                    // GC (write) excludes imports in progress (read)
	pinSeq     atomic.Uint64                   // counts pins recorded (import_run.go)
	claimMu    sync.Mutex
	claims     map[string]int // blocks claimed by import runs, by multihash (import_run.go)
	rtc        *rtcServer     // nil when WebRTC is disabled
	rtcHandler http.Handler   // router instrumented for webrtc

	pay           *payments    // vouchers, receipts, settlement
	countMu       sync.RWMutex // the block count (write) excludes imports and GC (read)
	blocksCounted atomic.Bool  // the background block count is done

	started time.Time    // when New ran, for the status page's uptime
	recent  recentErrors // the last warnings and errors, for the status page

	record atomic.Pointer[noderecord.Signed]
	coord  *CoordClient // while running with Config.Coordinator; guarded by mu

	repairQ   chan cid.Cid // corrupt blocks to fetch again
	repairMu  sync.Mutex
	repairing map[cid.Cid]bool // queued or being repaired

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	running   bool
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // Run and its goroutines
}

// New opens the data directory (identity, certificates, blockstore) and
// binds the HTTP and WebTransport listeners.
func New(cfg Config) (_ *Node, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("node: data dir: %w", err)
		}
	}
	n := &Node{cfg: cfg, metrics: newMetrics(), claims: make(map[string]int)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	if n.priv, err = loadOrCreateIdentity(cfg.DataDir); err != nil {
		return nil, err
	}
	n.id = noderecord.NodeIDFromKey(n.priv.Public().(ed25519.PublicKey))
	n.started = cfg.Now()
	n.log = slog.New(&recordingHandler{next: cfg.Logger.Handler(), rec: &n.recent}).With("node", n.id)
	leftover, err := n.clearTmp()
	if err != nil {
		return nil, err
	}
	if cfg.Registry != nil {
		if err := n.metrics.alsoRegister(cfg.Registry, n.id); err != nil {
			return nil, fmt.Errorf("node: register metrics: %w", err)
		}
	}

	n.repairQ, n.repairing = make(chan cid.Cid, repairQueueSize), make(map[cid.Cid]bool)
	onCorrupt := func(c cid.Cid) {
		n.metrics.corruptBlocks.Inc()
		cfg.Logger.Error("stored block failed its hash check; not serving it, fetching it again", "cid", c.String(), "dir", cfg.DataDir)
		n.queueRepair(c)
	}
	if n.ds, n.bs, n.checked, err = openStore(cfg.DataDir, onCorrupt); err != nil {
		return nil, err
	}
	n.files = &blockFiles{root: filepath.Join(cfg.DataDir, blocksDir), tmp: filepath.Join(cfg.DataDir, tmpDir), log: n.log}
	if err := n.loadPins(); err != nil {
		return nil, err
	}
	if n.pay, err = newPayments(n, cfg.Payments); err != nil {
		return nil, err
	}

	n.certs = &certManager{
		path:         filepath.Join(cfg.DataDir, certsFile),
		validity:     cfg.CertValidity,
		rotateBefore: cfg.CertRotateBefore,
		ips:          []net.IP{net.ParseIP(cfg.PublicHost), net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		now:          cfg.Now,
	}
	if err := n.certs.load(); err != nil {
		return nil, fmt.Errorf("node: certificates: %w", err)
	}

	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("node: listen http: %w", err)
	}
	n.httpURL = "http://" + net.JoinHostPort(cfg.PublicHost, portOf(n.httpLn.Addr()))
	if !cfg.DisableWebTransport {
		if n.udpConn, err = net.ListenPacket("udp", cfg.WebTransportAddr); err != nil {
			return nil, fmt.Errorf("node: listen webtransport: %w", err)
		}
		n.wtURL = "https://" + net.JoinHostPort(cfg.PublicHost, portOf(n.udpConn.LocalAddr())) + WebTransportPath
	}

	if n.handler, err = n.newRouter(); err != nil {
		return nil, err
	}
	n.httpSrv = &http.Server{
		Handler:           n.metrics.instrument(transportHTTP, n.platformOnly(n.handler)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
	}
	n.wtHandler = n.metrics.instrument(transportWebTransport, n.handler)
	n.wtSrv = n.newWebTransportServer()
	if !cfg.WebRTC.Disabled {
		n.rtcHandler = n.metrics.instrument(transportWebRTC, n.handler)
		if n.rtc, err = newRTCServer(n, cfg.WebRTC, cfg.PublicHost); err != nil {
			return nil, err
		}
	}

	if err := n.resign(); err != nil {
		return nil, err
	}
	n.startBlockCount()
	if leftover {
		n.collectLeftovers()
	}
	return n, nil
}

func portOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return strconv.Itoa(a.Port)
	case *net.UDPAddr:
		return strconv.Itoa(a.Port)
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// resign signs a fresh record with the current certificates.
func (n *Node) resign() error {
	cur, next := n.certs.pair()
	now := n.cfg.Now()
	s, err := noderecord.Sign(noderecord.Record{
		HTTP:         n.httpURL,
		WebTransport: n.wtURL,
		CertHashes:   []noderecord.CertHash{cur.certHash(), next.certHash()},
		Issued:       now,
		Expires:      cur.notAfter,
		WebRTC:       n.rtc != nil,
	}, n.priv)
	if err != nil {
		return fmt.Errorf("node: sign record: %w", err)
	}
	n.record.Store(&s)
	return nil
}

// rotate replaces the current certificate with the next one and re-signs
// the record.
func (n *Node) rotate() error {
	if err := n.certs.rotate(); err != nil {
		return fmt.Errorf("node: rotate certificate: %w", err)
	}
	if err := n.resign(); err != nil {
		return err
	}
	n.metrics.certRotations.Inc()
	cur, _ := n.certs.pair()
	n.log.Info("rotated WebTransport certificate", "notAfter", cur.notAfter)
	return nil
}

// Run serves HTTP and WebTransport until ctx is done or Close is called.
// It returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.closed.Load() {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.running {
		n.mu.Unlock()
		return ErrRunning
	}
	n.running = true
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()

	n.log.Info("node serving", "http", n.httpURL, "webtransport", n.wtURL)
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("node: http: %w", err)
		}
	})
	// wtTaken is closed once QUIC took the socket up (or Serve returned):
	// the WebTransport server must not be closed before, as its Serve
	// counts itself in a WaitGroup its Close waits on (webtransport-go),
	// and an Add racing that Wait is a data race.
	wtTaken := make(chan struct{})
	if n.udpConn != nil {
		var conn net.PacketConn = n.udpConn
		var taken *takenConn
		if udp, ok := n.udpConn.(*net.UDPConn); ok {
			taken = &takenConn{UDPConn: udp, taken: wtTaken}
			conn = taken
		}
		wg.Go(func() {
			defer func() {
				if taken != nil {
					taken.once.Do(func() { close(wtTaken) })
				}
			}()
			if err := n.wtSrv.Serve(conn); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("node: webtransport: %w", err)
			}
		})
		if taken == nil {
			close(wtTaken)
		}
	} else {
		close(wtTaken)
	}
	wg.Go(func() { n.rotateLoop(ctx) })
	wg.Go(func() { n.pay.settleLoop(ctx) })
	wg.Go(func() { n.repairLoop(ctx) })

	// Join once serving: the coordinator routes visitors here at once.
	nc, err := n.joinCoordinator()
	if err != nil {
		cancel()
		err = fmt.Errorf("node: coordinator: %w", err)
	} else {
		n.mu.Lock()
		n.coord = nc
		n.mu.Unlock()
		select {
		case <-ctx.Done():
		case err = <-errc:
			cancel()
		}
	}
	if nc != nil {
		// Leave first, so the coordinator stops routing here before the
		// servers go.
		_ = nc.Close()
		n.mu.Lock()
		n.coord = nil
		n.mu.Unlock()
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := n.httpSrv.Shutdown(shutdownCtx); serr != nil {
		_ = n.httpSrv.Close()
	}
	done()
	<-wtTaken
	_ = n.wtSrv.Close()
	if n.rtc != nil {
		_ = n.rtc.close()
	}
	if n.udpConn != nil {
		_ = n.udpConn.Close() // unblocks a Serve that has not returned yet
	}
	wg.Wait()
	n.log.Info("node stopped")
	return err
}

// rotateLoop rotates the certificate when it is due, re-checking the clock
// at least every minute so that a clock change is noticed.
func (n *Node) rotateLoop(ctx context.Context) {
	for {
		wait := n.certs.rotateAt().Sub(n.cfg.Now())
		if wait <= 0 {
			if err := n.rotate(); err != nil {
				n.log.Error("certificate rotation failed", "err", err)
				wait = time.Minute
			} else {
				continue
			}
		}
		wait = min(wait, time.Minute)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close stops serving, waits for every goroutine and closes the store. It
// is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed.Store(true)
		ran := n.running
		n.mu.Unlock()
		n.cancel()
		n.wg.Wait()
		var errs []error
		if n.wtSrv != nil && !ran {
			errs = append(errs, n.wtSrv.Close())
		}
		if n.rtc != nil {
			errs = append(errs, n.rtc.close())
		}
		if n.httpLn != nil {
			if err := n.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if n.udpConn != nil {
			if err := n.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if n.ds != nil {
			errs = append(errs, n.ds.Close())
			errs = append(errs, n.files.save()) // after flatfs saved its disk usage
		}
		if n.pay != nil {
			errs = append(errs, n.pay.store.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// ID is the node id ("n" + base32 of its ed25519 public key).
func (n *Node) ID() string { return n.id }

// HTTPURL is the base URL of the HTTP API, e.g. http://127.0.0.1:4001.
func (n *Node) HTTPURL() string { return n.httpURL }

// WebTransportURL is the WebTransport session URL, e.g.
// https://127.0.0.1:4433/verity/v1.
func (n *Node) WebTransportURL() string { return n.wtURL }

// Record is the current signed node record.
func (n *Node) Record() noderecord.Signed { return *n.record.Load() }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Blockstore is the node's blockstore.
func (n *Node) Blockstore() blockstore.Blockstore { return n.bs }

// Handler is the HTTP handler serving the node API (the one both transports
// use), without transport metrics.
func (n *Node) Handler() http.Handler { return n.handler }

// takenConn is the node's UDP socket as handed to the WebTransport
// server, closing taken at its first SyscallConn: QUIC asks for it when
// it takes the socket up, after the server's Serve counted itself.
type takenConn struct {
	*net.UDPConn
	once  sync.Once
	taken chan struct{}
}

func (c *takenConn) SyscallConn() (syscall.RawConn, error) {
	c.once.Do(func() { close(c.taken) })
	return c.UDPConn.SyscallConn()
}
