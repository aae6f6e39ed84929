package gateway

import (
	"container/list"
	"sync"
)

// htmlDoc is a verified HTML document kept in memory.
type htmlDoc struct {
	etag        string // entity CID
	contentType string
	body        []byte
	node        string // node that served it
	blocks      int
}

type cacheKey struct{ site, root, path string }

type cacheEntry struct {
	key cacheKey
	doc *htmlDoc
}

// htmlCache is an LRU of verified HTML documents bounded by total body bytes.
type htmlCache struct {
	max int64

	mu    sync.Mutex
	size  int64
	ll    *list.List // front: most recent
	items map[cacheKey]*list.Element
}

func newHTMLCache(max int64) *htmlCache {
	return &htmlCache{max: max, ll: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *htmlCache) get(k cacheKey) (*htmlDoc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).doc, true
}

func (c *htmlCache) put(k cacheKey, d *htmlDoc) {
	n := int64(len(d.body))
	if c.max <= 0 || n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.removeElement(e)
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, doc: d})
	c.size += n
	for c.size > c.max {
		c.removeElement(c.ll.Back())
	}
}

// purgeSite drops every document of site whose root is not keep.
func (c *htmlCache) purgeSite(site, keep string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.items {
		if k.site == site && k.root != keep {
			c.removeElement(e)
			n++
		}
	}
	return n
}

func (c *htmlCache) removeElement(e *list.Element) {
	ent := e.Value.(*cacheEntry)
	c.ll.Remove(e)
	delete(c.items, ent.key)
	c.size -= int64(len(ent.doc.body))
}

func (c *htmlCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
