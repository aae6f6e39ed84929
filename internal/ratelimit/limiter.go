package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Limiter. Zero values are defaults (see the package
// doc).
type Config struct {
	// Rate is the tokens each key regains per second; ≤ 0: no limit.
	Rate float64
	// Burst is the most tokens a key holds (and starts with). Default 1.
	Burst int
	// MaxKeys bounds the keys remembered. Default 100,000.
	MaxKeys int
	// SweepInterval is the least time between two sweeps of refilled
	// buckets. Default 1 min.
	SweepInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

const (
	defaultMaxKeys       = 100_000
	defaultSweepInterval = time.Minute
	// evictSamples is how many keys are looked at to pick the one to
	// evict when MaxKeys is reached.
	evictSamples = 8
)

func (c Config) normalize() Config {
	if c.Burst <= 0 {
		c.Burst = 1
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = defaultMaxKeys
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = defaultSweepInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Limiter is a token bucket per key. It is safe for concurrent use.
type Limiter[K comparable] struct {
	cfg   Config
	limit rate.Limit

	mu        sync.Mutex
	keys      map[K]*entry
	lastSweep time.Time
}

type entry struct {
	b    *rate.Limiter
	last time.Time // last use
}

// New returns a Limiter with cfg.
func New[K comparable](cfg Config) *Limiter[K] {
	cfg = cfg.normalize()
	l := &Limiter[K]{cfg: cfg, limit: rate.Limit(cfg.Rate), keys: make(map[K]*entry)}
	if cfg.Rate <= 0 {
		l.limit = rate.Inf
	}
	return l
}

// Allow takes a token of key now, and reports whether there was one.
func (l *Limiter[K]) Allow(key K) bool { return l.AllowAt(key, l.cfg.Now()) }

// AllowAt is Allow at time now.
func (l *Limiter[K]) AllowAt(key K, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.cfg.SweepInterval {
		l.sweep(now)
	}
	e := l.keys[key]
	if e == nil {
		l.makeRoom()
		e = &entry{b: rate.NewLimiter(l.limit, l.cfg.Burst)}
		l.keys[key] = e
	}
	e.last = now
	return e.b.AllowN(now, 1)
}

// Len returns the number of keys remembered.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// sweep forgets the keys whose buckets have refilled: a new bucket for
// one of them would be the same full bucket. mu is held.
func (l *Limiter[K]) sweep(now time.Time) {
	l.lastSweep = now
	burst := float64(l.cfg.Burst)
	for k, e := range l.keys {
		if e.b.TokensAt(now) >= burst {
			delete(l.keys, k)
		}
	}
}

// makeRoom evicts, at MaxKeys, the least recently used of a few sampled
// keys. mu is held.
func (l *Limiter[K]) makeRoom() {
	for len(l.keys) >= l.cfg.MaxKeys {
		var (
			victim K
			oldest *entry
			n      int
		)
		for k, e := range l.keys { // map order is random: a sample
			if oldest == nil || e.last.Before(oldest.last) {
				victim, oldest = k, e
			}
			if n++; n == evictSamples {
				break
			}
		}
		delete(l.keys, victim)
	}
}
