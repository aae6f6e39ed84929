package gateway

import "github.com/verity-cdn/verity/internal/lru"

// htmlDoc is a verified HTML document kept in memory.
type htmlDoc struct {
	etag        string // entity CID
	contentType string
	body        []byte
	node        string // node that served it
	blocks      int
}

type cacheKey struct{ site, root, path string }

// htmlCache is an LRU of verified HTML documents bounded by total body bytes.
type htmlCache struct {
	c *lru.Cache[cacheKey, *htmlDoc]
}

func newHTMLCache(max int64) *htmlCache {
	return &htmlCache{c: lru.New[cacheKey](max, func(d *htmlDoc) int64 { return int64(len(d.body)) })}
}

func (c *htmlCache) get(k cacheKey) (*htmlDoc, bool) { return c.c.Get(k) }

func (c *htmlCache) put(k cacheKey, d *htmlDoc) { c.c.Put(k, d) }

// purgeSite drops every document of site whose root is not keep.
func (c *htmlCache) purgeSite(site, keep string) int {
	return c.c.RemoveIf(func(k cacheKey) bool { return k.site == site && k.root != keep })
}

func (c *htmlCache) bytes() int64 { return c.c.Bytes() }
