// Package ratelimit holds the limiters that keep one client from taking
// what is meant for all: token buckets per key (Limiter, on
// golang.org/x/time/rate), concurrency caps per key (Counter) and a
// listener that caps the connections each client address holds
// (Listener). Client addresses are grouped into keys by prefix (Prefixes:
// an IPv4 address, an IPv6 /64 by default), because one IPv6 host
// commonly owns a whole /64; behind trusted proxies the client is read
// from X-Forwarded-For (TrustedProxies).
//
// Usage, a limit of 2 offers per second (burst 10) per client /64:
//
//	offers := ratelimit.NewAddr(ratelimit.Config{Rate: 2, Burst: 10}, ratelimit.Prefixes{})
//	if !offers.Allow(addr) {
//		// 429
//	}
//
// and any other key, e.g. settlement batches per node id:
//
//	batches := ratelimit.New[string](ratelimit.Config{Rate: 5, Burst: 50})
//	ok := batches.AllowAt(nodeID, now)
//
// Memory is bounded: a key whose bucket has refilled is forgotten (a new
// bucket for it would be the same full bucket), swept at most once per
// Config.SweepInterval; and no more than Config.MaxKeys keys are held:
// past that, the least recently used of a few sampled keys is evicted,
// which can only give that key a full bucket again. A client that controls
// more than MaxKeys keys (a large IPv6 block) is beyond what per-key limits
// can bound; global limits (the gateway's MaxConns) bound it.
//
// Config zero values: Burst 1, MaxKeys 100,000, SweepInterval 1 min, Now
// time.Now; a Rate ≤ 0 means no limit at all (every call is allowed).
// Prefixes zero values: IPv4 /32, IPv6 /64.
package ratelimit
