// Package lru is a cache of values by key bounded by the sum of their
// sizes, the least recently used dropped first.
package lru

import (
	"container/list"
	"sync"
)

// Cache keeps values by key, at most max bytes of them as size counts
// them. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	max  int64
	size func(V) int64

	mu    sync.Mutex
	used  int64
	order *list.List // of *entry[K, V], most recently used first
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns an empty cache of at most max bytes.
func New[K comparable, V any](max int64, size func(V) int64) *Cache[K, V] {
	return &Cache[K, V]{max: max, size: size, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of k, now the most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry[K, V]).val, true
}

// Put keeps v under k (replacing what k had), then drops the least
// recently used values beyond the bound. A value larger than the bound
// is not kept.
func (c *Cache[K, V]) Put(k K, v V) {
	n := c.size(v)
	if c.max <= 0 || n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.drop(e)
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v})
	c.used += n
	for c.used > c.max {
		c.drop(c.order.Back())
	}
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.drop(e)
	}
}

// RemoveIf drops every key match reports and returns how many it dropped.
func (c *Cache[K, V]) RemoveIf(match func(K) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.items {
		if match(k) {
			c.drop(e)
			n++
		}
	}
	return n
}

// Bytes returns the size of what the cache holds.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// drop removes e; c.mu is held.
func (c *Cache[K, V]) drop(e *list.Element) {
	ent := e.Value.(*entry[K, V])
	c.order.Remove(e)
	delete(c.items, ent.key)
	c.used -= c.size(ent.val)
}
