package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowOptions selects what Follow delivers.
type FollowOptions struct {
	// Types keeps only these event types; empty: every type.
	Types []Type
	// Last replays up to this many stored events (of those types) before
	// the new ones; 0 delivers only events stored from now on.
	Last uint64
	// NoWait returns once the replayed events are delivered, instead of
	// waiting for new ones.
	NoWait bool
}

// Follow calls fn with every event stored in the stream, in stream order,
// until ctx ends (it then returns nil) or fn returns an error (returned).
// It keeps no durable state: an ordered, ephemeral consumer, so any number
// of followers cost the stream nothing once they stop. Events whose
// envelope does not parse are skipped.
func (b *Bus) Follow(ctx context.Context, opts FollowOptions, fn func(Event) error) error {
	if b.isClosed() {
		return ErrClosed
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	for _, t := range opts.Types {
		if !t.Valid() {
			return &EventError{Field: "type", Err: ErrInvalidEvent}
		}
		cfg.FilterSubjects = append(cfg.FilterSubjects, t.Subject())
	}
	if opts.Last > 0 {
		stream, err := b.js.Stream(ctx, StreamName)
		if err != nil {
			return fmt.Errorf("events: follow: %w", err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("events: follow: %w", err)
		}
		// Replaying the last N of the filtered types would need a reverse
		// scan; the last N of the stream, filtered, is a good bound.
		last := info.State.LastSeq
		start := uint64(1)
		if last > opts.Last {
			start = last - opts.Last + 1
		}
		if last > 0 {
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = start
		}
	}
	cons, err := b.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("events: follow: %w", err)
	}
	if opts.NoWait {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("events: follow: %w", err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("events: follow: %w", err)
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	defer iter.Stop()
	for {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("events: follow: %w", err)
		}
		if ev, perr := ParseEvent(msg.Data()); perr == nil {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if opts.NoWait {
			if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
				return nil
			}
		}
	}
}
