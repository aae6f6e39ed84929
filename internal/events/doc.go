// Package events is Verity's event and state backbone on NATS JetStream.
//
// A Bus connects to an external NATS server or cluster (Config.URL) or, by
// default, runs an embedded NATS server in-process with JetStream storing
// under Config.StoreDir. On that connection it keeps:
//
//   - the stream "VERITY_EVENTS" on the subjects "verity.events.>": every key
//     action is published there as an Event, a JSON envelope
//     {id, type, time, source, data}, on the subject "verity.events." + type;
//   - the KV buckets "sites", "nodes", "placements", "tokens" (deploy
//     tokens, hashed) and "deploys" (each site's latest deploy) holding
//     shared state.
//
// Usage:
//
//	bus, err := events.Open(ctx, events.Config{StoreDir: dir})
//	defer bus.Close()
//
//	ev, err := events.New(events.TypeSitePublished, "gateway-1",
//		events.SitePublished{Site: "blog", Root: root, Version: 3})
//	err = bus.Publish(ctx, ev)
//
//	sub, err := bus.Subscribe(ctx, "purge-gw1", func(ctx context.Context, ev events.Event) error {
//		var p events.SitePublished
//		if err := ev.Decode(&p); err != nil {
//			return err
//		}
//		return purge(p.Site)
//	}, events.TypeSitePublished, events.TypeSiteRolledBack)
//	defer sub.Stop()
//
//	kv, err := bus.KV(events.BucketSites)
//	rev, err := events.Update(ctx, kv, "blog", func(old []byte) ([]byte, error) { ... })
//
// Publishing is deduplicated by event id (the Nats-Msg-Id header) within
// Config.DedupeWindow, so an event published twice, by a retry or by two
// gateways reacting to the same cause with the same id, is stored once.
//
// Subscriptions are durable JetStream consumers with explicit acks: a
// handler that returns nil acks the event; one that returns an error gets it
// again after a backoff that doubles from Config.RetryMin up to
// Config.RetryMax, at most Config.MaxDeliver times in all. Events that are
// not valid envelopes are terminated (never redelivered). Two Subscribe
// calls with the same durable name share the work (each event goes to one
// of them); distinct names each see every event.
//
// Update is a compare-and-set read-modify-write on a KV key that retries on
// revision conflicts, so concurrent writers from several gateways never lose
// an update.
//
// A bucket's Get is answered by any replica on a replicated bus, so it may
// lag behind a write just acknowledged; Bus.LeaderKV gives the bucket with
// Get and ListKeys answered by its stream's leader (leader.go), for the
// reads a decision must not make on stale data.
//
// Errors: ErrClosed, ErrInvalidEvent, ErrUnknownBucket, ErrNoChange (which an
// Update function returns to leave a key as it is) and ErrConflict (Update
// gave up after Config-independent MaxUpdateAttempts conflicts). Errors from
// NATS are wrapped with %w.
//
// The subjects, envelope, payloads and buckets are documented in
// docs/events.md.
package events
