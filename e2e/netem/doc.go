// Package netem emulates network distance on loopback, in user space: TCP
// and UDP forwarders that add a one-way delay and, optionally, a bandwidth
// cap to each direction. The benchmarks use it where `tc netem` is not
// available (no kernel module on these machines) to place a gateway 80 ms
// away and nodes 10 ms away.
//
// Usage:
//
//	p, err := netem.NewTCP(netem.Config{
//		Target: gatewayAddr,                              // "127.0.0.1:port"
//		Up:     netem.Link{Delay: 40 * time.Millisecond}, // client → target
//		Down:   netem.Link{Delay: 40 * time.Millisecond, Rate: 10 << 20},
//	})
//	defer p.Close()
//	// dial p.Addr() instead of gatewayAddr
//
// NewUDP forwards datagrams one for one, so message boundaries are kept,
// and keeps one upstream socket per client address, so QUIC (and
// WebTransport over it) works through it: the server sees one peer per
// client.
//
// Model: each direction is a link with a FIFO queue. A chunk (TCP) or
// datagram (UDP) leaves the queue after the previous one, at Rate bytes per
// second when Rate > 0, and arrives Delay later. Queues are bounded by
// Config.QueueBytes: a full TCP queue stops reading from the sender
// (backpressure), a full UDP queue drops the datagram, as a router would.
//
// Config zero values: Listen "127.0.0.1:0"; QueueBytes 4 MiB per direction
// (TCP throughput is then at most QueueBytes per Delay); UDP client
// sessions end after IdleTimeout (default 1 min) without traffic, at most
// MaxSessions (default 1024) at once. Close stops every goroutine and
// closes every socket; it is idempotent.
//
// The TCP forwarder terminates connections: a client's handshake completes
// at once and only data (and the FIN) is delayed, so a new connection costs
// no emulated round trip. The UDP forwarder delays every datagram,
// handshakes included.
//
// The delay is added on top of loopback's own, and timers are only as
// precise as the Go runtime's (about a millisecond): measured latency is
// at least the configured one, never less.
package netem
