package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxUpdateAttempts bounds Update's retries on revision conflicts.
const MaxUpdateAttempts = 64

// UpdateFunc computes a key's new value from its current one (nil when the
// key does not exist). Returning ErrNoChange leaves the key as it is; any
// other error aborts Update with that error. It may be called several
// times, so it must not have side effects.
type UpdateFunc func(old []byte) ([]byte, error)

// Update is a compare-and-set read-modify-write of key in kv: it reads the
// current value and revision, calls fn, and writes the result only if the
// key still has that revision, retrying from the read on conflict. It
// returns the key's revision after the write.
func Update(ctx context.Context, kv jetstream.KeyValue, key string, fn UpdateFunc) (uint64, error) {
	for attempt := 0; attempt < MaxUpdateAttempts; attempt++ {
		if attempt >= 4 {
			// Heavy contention: spread the writers out a little.
			t := time.NewTimer(time.Duration(rand.IntN(attempt)) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var (
			old []byte
			rev uint64
		)
		entry, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			old, rev = entry.Value(), entry.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return 0, fmt.Errorf("events: get %s/%s: %w", kv.Bucket(), key, err)
		}
		val, err := fn(old)
		if errors.Is(err, ErrNoChange) {
			return rev, nil
		}
		if err != nil {
			return 0, err
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = kv.Create(ctx, key, val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			newRev, err = kv.Update(ctx, key, val, rev)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		}
		if err != nil {
			return 0, fmt.Errorf("events: write %s/%s: %w", kv.Bucket(), key, err)
		}
		return newRev, nil
	}
	return 0, fmt.Errorf("%w: %s/%s", ErrConflict, kv.Bucket(), key)
}
