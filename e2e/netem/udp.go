package netem

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload forwarded.
const maxDatagram = 64 << 10

// UDPProxy forwards UDP datagrams to Config.Target through delay lines,
// one upstream socket per client address.
type UDPProxy struct {
	cfg    Config
	pc     *net.UDPConn
	target *net.UDPAddr
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	sessions map[string]*udpSession

	dropped atomic.Int64
}

// udpSession is one client address and its upstream socket.
type udpSession struct {
	key      string
	client   *net.UDPAddr
	up       *net.UDPConn
	upL      *line
	downL    *line
	lastSeen atomic.Int64 // unix nanos of the last datagram either way
}

func (s *udpSession) touch() { s.lastSeen.Store(time.Now().UnixNano()) }

// NewUDP starts a UDP forwarder listening on cfg.Listen.
func NewUDP(cfg Config) (*UDPProxy, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	target, err := net.ResolveUDPAddr("udp", cfg.Target)
	if err != nil {
		return nil, errors.Join(ErrConfig, err)
	}
	laddr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, errors.Join(ErrConfig, err)
	}
	pc, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &UDPProxy{cfg: cfg, pc: pc, target: target, ctx: ctx, cancel: cancel, sessions: map[string]*udpSession{}}
	p.wg.Add(1)
	go p.readClients()
	return p, nil
}

// Addr is the address clients send to instead of the target.
func (p *UDPProxy) Addr() string { return p.pc.LocalAddr().String() }

// Dropped counts datagrams dropped (full queue, too many sessions).
func (p *UDPProxy) Dropped() int64 { return p.dropped.Load() }

// Close stops forwarding, closes every socket and waits for every
// goroutine. It is idempotent.
func (p *UDPProxy) Close() error {
	p.once.Do(func() {
		p.cancel()
		_ = p.pc.Close()
		p.mu.Lock()
		for _, s := range p.sessions {
			s.upL.kill()
			s.downL.kill()
			_ = s.up.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
	return nil
}

func (p *UDPProxy) readClients() {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := p.pc.ReadFromUDP(buf)
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s := p.session(addr)
		if s == nil || !s.upL.offer(append([]byte(nil), buf[:n]...)) {
			p.dropped.Add(1)
			continue
		}
		s.touch()
	}
}

// session returns the session of addr, starting it if needed; nil when
// the proxy is closing or has MaxSessions already.
func (p *UDPProxy) session(addr *net.UDPAddr) *udpSession {
	key := addr.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.sessions[key]; ok {
		return s
	}
	if p.ctx.Err() != nil || len(p.sessions) >= p.cfg.MaxSessions {
		return nil
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		p.cfg.Logger.Debug("netem: dial target", "target", p.cfg.Target, "err", err)
		return nil
	}
	s := &udpSession{key: key, client: addr, up: up,
		upL: newLine(p.cfg.Up, p.cfg.QueueBytes), downL: newLine(p.cfg.Down, p.cfg.QueueBytes)}
	s.touch()
	p.sessions[key] = s
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		s.upL.deliver(p.ctx, func(b []byte) error { _, err := s.up.Write(b); return err })
	}()
	go func() {
		defer p.wg.Done()
		s.downL.deliver(p.ctx, func(b []byte) error { _, err := p.pc.WriteToUDP(b, s.client); return err })
	}()
	go func() {
		defer p.wg.Done()
		p.readTarget(s)
	}()
	return s
}

// readTarget forwards the target's datagrams to the session's client until
// the session has been idle for IdleTimeout or its socket fails.
func (p *UDPProxy) readTarget(s *udpSession) {
	defer p.end(s)
	buf := make([]byte, maxDatagram)
	for {
		_ = s.up.SetReadDeadline(time.Now().Add(p.cfg.IdleTimeout))
		n, err := s.up.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) &&
				time.Since(time.Unix(0, s.lastSeen.Load())) < p.cfg.IdleTimeout {
				continue
			}
			return
		}
		if !s.downL.offer(append([]byte(nil), buf[:n]...)) {
			p.dropped.Add(1)
			continue
		}
		s.touch()
	}
}

// end removes s and stops its goroutines.
func (p *UDPProxy) end(s *udpSession) {
	p.mu.Lock()
	if p.sessions[s.key] == s {
		delete(p.sessions, s.key)
	}
	p.mu.Unlock()
	s.upL.kill()
	s.downL.kill()
	_ = s.up.Close()
}
