package events

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrWatcherClosed: a KV watcher ended before delivering the current values.
var ErrWatcherClosed = errors.New("events: KV watcher closed")

// LoadInitial applies the current values a fresh KV watcher delivers first,
// up to the nil entry that ends them.
func LoadInitial(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return ErrWatcherClosed
			}
			if e == nil {
				return nil
			}
			apply(e)
		}
	}
}

// Watch applies every later update of w until ctx ends or w closes; it
// stops w when it returns.
func Watch(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry)) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				apply(e)
			}
		}
	}
}
