package lru

import "testing"

func TestCache(t *testing.T) {
	c := New[string, []byte](10, func(b []byte) int64 { return int64(len(b)) })
	c.Put("a", make([]byte, 4))
	c.Put("b", make([]byte, 4))
	c.Get("a") // a is now the most recent
	c.Put("c", make([]byte, 4))
	if _, ok := c.Get("b"); ok {
		t.Fatal("the least recently used value was kept over the bound")
	}
	if _, ok := c.Get("a"); !ok {
		t.Fatal("the most recently used value was dropped")
	}
	if c.Bytes() != 8 {
		t.Fatalf("bytes %d, want 8", c.Bytes())
	}
	c.Put("a", make([]byte, 2)) // replaced
	if c.Bytes() != 6 {
		t.Fatalf("bytes %d after a replace, want 6", c.Bytes())
	}
	c.Put("big", make([]byte, 11))
	if _, ok := c.Get("big"); ok || c.Bytes() != 6 {
		t.Fatalf("a value over the bound was kept (bytes %d)", c.Bytes())
	}
	c.Remove("a")
	if _, ok := c.Get("a"); ok || c.Bytes() != 4 {
		t.Fatalf("Remove left a (bytes %d)", c.Bytes())
	}
	c.Put("d", make([]byte, 1))
	if n := c.RemoveIf(func(k string) bool { return k == "c" || k == "x" }); n != 1 || c.Bytes() != 1 {
		t.Fatalf("RemoveIf removed %d, bytes %d", n, c.Bytes())
	}
	if z := New[string, []byte](0, func(b []byte) int64 { return int64(len(b)) }); true {
		z.Put("a", nil)
		if _, ok := z.Get("a"); ok {
			t.Fatal("a cache of no bytes kept a value")
		}
	}
}
