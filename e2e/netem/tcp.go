package netem

import (
	"context"
	"io"
	"net"
	"sync"
)

// chunkSize is the largest TCP chunk read at once and queued as one packet.
const chunkSize = 32 << 10

// TCPProxy forwards TCP connections to Config.Target through delay lines.
type TCPProxy struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	pairs map[*tcpPair]struct{}
}

// NewTCP starts a TCP forwarder listening on cfg.Listen.
func NewTCP(cfg Config) (*TCPProxy, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &TCPProxy{cfg: cfg, ln: ln, ctx: ctx, cancel: cancel, pairs: map[*tcpPair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial instead of the target.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, drops every connection and waits for every
// goroutine. It is idempotent.
func (p *TCPProxy) Close() error {
	p.once.Do(func() {
		p.cancel()
		_ = p.ln.Close()
		p.mu.Lock()
		for tp := range p.pairs {
			tp.abort()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
	return nil
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// tcpPair is one client connection and its upstream connection.
type tcpPair struct {
	client, target net.Conn
	up, down       *line
}

func (tp *tcpPair) abort() {
	tp.up.kill()
	tp.down.kill()
	_ = tp.client.Close()
	if tp.target != nil {
		_ = tp.target.Close()
	}
}

func (p *TCPProxy) handle(c net.Conn) {
	defer p.wg.Done()
	var d net.Dialer
	t, err := d.DialContext(p.ctx, "tcp", p.cfg.Target)
	if err != nil {
		p.cfg.Logger.Debug("netem: dial target", "target", p.cfg.Target, "err", err)
		_ = c.Close()
		return
	}
	tp := &tcpPair{client: c, target: t, up: newLine(p.cfg.Up, p.cfg.QueueBytes), down: newLine(p.cfg.Down, p.cfg.QueueBytes)}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		tp.abort()
		return
	}
	p.pairs[tp] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); pump(c, tp.up) }()
	go func() { defer wg.Done(); p.flow(tp, tp.up, t) }()
	go func() { defer wg.Done(); pump(t, tp.down) }()
	go func() { defer wg.Done(); p.flow(tp, tp.down, c) }()
	wg.Wait()

	tp.abort()
	p.mu.Lock()
	delete(p.pairs, tp)
	p.mu.Unlock()
}

// pump reads src into l until EOF or an error, then closes l's input.
func pump(src io.Reader, l *line) {
	defer l.close()
	for {
		b := make([]byte, chunkSize)
		n, err := src.Read(b)
		if n > 0 && !l.push(b[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// flow writes l to dst at the packets' arrival times. When l drains, dst's
// write side is closed (the sender's FIN, delayed like its data); when
// writing fails, the whole pair is dropped.
func (p *TCPProxy) flow(tp *tcpPair, l *line, dst net.Conn) {
	ok := l.deliver(p.ctx, func(b []byte) error {
		_, err := dst.Write(b)
		return err
	})
	if !ok {
		tp.abort()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
