package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go/jetstream"
)

// Lock timing: a holder refreshes its lock every lockRefresh; a lock not
// refreshed for lockStale is taken to belong to a gateway that died and
// may be taken over. A waiter polls every lockPoll.
var (
	lockRefresh = 5 * time.Second
	lockStale   = 30 * time.Second
	lockPoll    = 250 * time.Millisecond
)

// KVStorage is a certmagic.Storage on a JetStream KV bucket: every gateway
// of a cluster on the same bus sees the same certificates, ACME account
// and locks, so a name is issued once for the cluster and renewed by one
// gateway. Keys (certmagic's slash-separated paths) are escaped to the
// bucket's key alphabet; values are stored whole (certificates and keys
// are a few KiB).
type KVStorage struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	locks map[string]*heldLock // locks this process holds, by name
}

var _ certmagic.Storage = (*KVStorage)(nil)

// heldLock is a lock this process holds: its KV revision and the refresher.
type heldLock struct {
	rev  uint64
	stop chan struct{}
	done chan struct{}
}

// lockValue is what a lock key holds.
type lockValue struct {
	Owner   string    `json:"owner"`
	Updated time.Time `json:"updated"`
}

// NewKVStorage returns a storage on kv (history 1 is enough).
func NewKVStorage(kv jetstream.KeyValue) *KVStorage {
	return &KVStorage{kv: kv, locks: make(map[string]*heldLock)}
}

// dataPrefix and lockPrefix separate stored files from locks in the bucket.
const (
	dataPrefix = "f."
	lockPrefix = "l."
)

// escapeKey maps a certmagic key to a KV key: [A-Za-z0-9-/] stay, every
// other byte becomes _XX (hex), so the mapping is one to one and the
// result uses only characters a KV key allows, with no '.' (a KV key's
// token separator).
func escapeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02X", c)
	}
	return b.String()
}

// unescapeKey inverts escapeKey.
func unescapeKey(k string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] != '_' {
			b.WriteByte(k[i])
			continue
		}
		if i+2 >= len(k) {
			return "", fmt.Errorf("acme: bad stored key %q", k)
		}
		var c byte
		if _, err := fmt.Sscanf(k[i+1:i+3], "%02X", &c); err != nil {
			return "", fmt.Errorf("acme: bad stored key %q", k)
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

// normKey drops leading and trailing slashes, as certmagic's paths have none.
func normKey(key string) string { return strings.Trim(key, "/") }

// Store implements certmagic.Storage.
func (s *KVStorage) Store(ctx context.Context, key string, value []byte) error {
	if _, err := s.kv.Put(ctx, dataPrefix+escapeKey(normKey(key)), value); err != nil {
		return fmt.Errorf("acme: store %s: %w", key, err)
	}
	return nil
}

// Load implements certmagic.Storage; a missing key is fs.ErrNotExist.
func (s *KVStorage) Load(ctx context.Context, key string) ([]byte, error) {
	e, err := s.kv.Get(ctx, dataPrefix+escapeKey(normKey(key)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("acme: %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: load %s: %w", key, err)
	}
	return e.Value(), nil
}

// Delete implements certmagic.Storage: key and every key under it.
func (s *KVStorage) Delete(ctx context.Context, key string) error {
	keys, err := s.keys(ctx)
	if err != nil {
		return err
	}
	key = normKey(key)
	for _, k := range keys {
		if k == key || strings.HasPrefix(k, key+"/") {
			if err := s.kv.Delete(ctx, dataPrefix+escapeKey(k)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("acme: delete %s: %w", k, err)
			}
		}
	}
	return nil
}

// Exists implements certmagic.Storage: a stored key or a directory of them.
func (s *KVStorage) Exists(ctx context.Context, key string) bool {
	key = normKey(key)
	if _, err := s.kv.Get(ctx, dataPrefix+escapeKey(key)); err == nil {
		return true
	}
	keys, err := s.keys(ctx)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if strings.HasPrefix(k, key+"/") {
			return true
		}
	}
	return false
}

// List implements certmagic.Storage: the keys directly under path (as
// path/name, files and directories), or every file under it when
// recursive.
func (s *KVStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	path = normKey(path)
	prefix := path + "/"
	if path == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		if !recursive {
			first, _, _ := strings.Cut(rest, "/")
			k = prefix + first
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("acme: list %s: %w", path, fs.ErrNotExist)
	}
	slices.Sort(out)
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *KVStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = normKey(key)
	e, err := s.kv.Get(ctx, dataPrefix+escapeKey(key))
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: e.Created(), Size: int64(len(e.Value())), IsTerminal: true}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return certmagic.KeyInfo{}, fmt.Errorf("acme: stat %s: %w", key, err)
	}
	if s.Exists(ctx, key) {
		return certmagic.KeyInfo{Key: key}, nil
	}
	return certmagic.KeyInfo{}, fmt.Errorf("acme: %s: %w", key, fs.ErrNotExist)
}

// keys lists every stored file key, unescaped.
func (s *KVStorage) keys(ctx context.Context) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, dataPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("acme: list keys: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		u, err := unescapeKey(strings.TrimPrefix(k, dataPrefix))
		if err != nil {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// Lock implements certmagic.Locker: it waits until name is free (or its
// holder stopped refreshing it for lockStale), takes it and keeps it fresh
// until Unlock.
func (s *KVStorage) Lock(ctx context.Context, name string) error {
	key := lockPrefix + escapeKey(name)
	for {
		rev, err := s.tryLock(ctx, key)
		if err == nil {
			h := &heldLock{rev: rev, stop: make(chan struct{}), done: make(chan struct{})}
			s.mu.Lock()
			s.locks[name] = h
			s.mu.Unlock()
			go s.refresh(key, h)
			return nil
		}
		if !errors.Is(err, errLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("acme: lock %s: %w", name, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

var errLocked = errors.New("acme: locked")

// tryLock takes key if it is free or stale, returning its revision.
func (s *KVStorage) tryLock(ctx context.Context, key string) (uint64, error) {
	v, _ := json.Marshal(lockValue{Owner: owner, Updated: time.Now()})
	rev, err := s.kv.Create(ctx, key, v)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("acme: lock %s: %w", key, err)
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, errLocked // released meanwhile: try again
	}
	if err != nil {
		return 0, fmt.Errorf("acme: lock %s: %w", key, err)
	}
	var cur lockValue
	if json.Unmarshal(e.Value(), &cur) == nil && time.Since(cur.Updated) < lockStale {
		return 0, errLocked
	}
	// Stale (or unreadable): take it over, unless another did first.
	rev, err = s.kv.Update(ctx, key, v, e.Revision())
	if err != nil {
		return 0, errLocked
	}
	return rev, nil
}

// refresh keeps the lock fresh until Unlock.
func (s *KVStorage) refresh(key string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(lockRefresh)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		v, _ := json.Marshal(lockValue{Owner: owner, Updated: time.Now()})
		ctx, cancel := context.WithTimeout(context.Background(), lockRefresh)
		rev, err := s.kv.Update(ctx, key, v, h.rev)
		cancel()
		if err != nil {
			return // lost (taken over as stale) or the bus is gone
		}
		s.mu.Lock()
		h.rev = rev
		s.mu.Unlock()
	}
}

// Unlock implements certmagic.Locker.
func (s *KVStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("acme: unlock %s: not held", name)
	}
	close(h.stop)
	<-h.done
	s.mu.Lock()
	rev := h.rev
	s.mu.Unlock()
	// A lock taken over as stale meanwhile is not ours to delete: the
	// revision check refuses that, and there is nothing else to do.
	_ = s.kv.Delete(ctx, lockPrefix+escapeKey(name), jetstream.LastRevision(rev))
	return nil
}
