package ratelimit

import "sync"

// Counter caps how many things (connections, requests in flight) each key
// holds at once. Only keys holding something are remembered, so its
// memory follows what is held. It is safe for concurrent use.
type Counter[K comparable] struct {
	max int

	mu   sync.Mutex
	held map[K]int
}

// NewCounter returns a Counter allowing max per key; max ≤ 0: no cap.
func NewCounter[K comparable](max int) *Counter[K] {
	return &Counter[K]{max: max, held: make(map[K]int)}
}

// Acquire takes one for key and reports true, or reports false when key
// already holds the maximum. Every true must be followed by one Release.
func (c *Counter[K]) Acquire(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.held[key] >= c.max {
		return false
	}
	c.held[key]++
	return true
}

// Release gives back one that Acquire took for key.
func (c *Counter[K]) Release(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.held[key]; n > 1 {
		c.held[key] = n - 1
	} else {
		delete(c.held, key)
	}
}

// Held returns how many key holds.
func (c *Counter[K]) Held(key K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[key]
}

// Len returns how many keys hold something.
func (c *Counter[K]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}
