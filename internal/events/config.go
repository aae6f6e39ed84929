package events

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Bus. Every field but StoreDir (or URL) has a working
// zero value.
type Config struct {
	// URL of an external NATS server or cluster ("nats://h1:4222,nats://h2:4222").
	// When empty, Open starts an embedded server with JetStream.
	URL string

	// StoreDir is where the embedded server keeps JetStream data. Required
	// when URL is empty; ignored otherwise.
	StoreDir string

	// Listen is the address the embedded server listens on for other
	// processes (e.g. "127.0.0.1:0" for a random loopback port; see
	// Bus.ClientURL). Empty: in-process connections only.
	Listen string

	// Name identifies this process in connection names and as the default
	// event Source. Default "verity".
	Name string

	// Replicas of the stream and buckets; 1 for a single server, 3 for a
	// three-server cluster. Default 1.
	Replicas int

	// DedupeWindow is how long event ids are remembered for deduplication.
	// Default 2 minutes.
	DedupeWindow time.Duration

	// MaxAge is how long events are kept in the stream. Default 7 days.
	MaxAge time.Duration

	// AckWait is how long a handler may run before its event is redelivered.
	// Default 30 s.
	AckWait time.Duration

	// MaxDeliver bounds deliveries of one event to one durable consumer.
	// Default 10.
	MaxDeliver int

	// RetryMin and RetryMax bound the redelivery backoff after a handler
	// error: RetryMin, doubling up to RetryMax. Defaults 100 ms and 30 s.
	RetryMin time.Duration
	RetryMax time.Duration

	// ConnectTimeout bounds Open's connection and setup. Default 10 s.
	ConnectTimeout time.Duration

	// Logger default slog.Default().
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	if c.URL == "" && c.StoreDir == "" {
		return c, errors.New("events: Config.StoreDir is required for the embedded server")
	}
	if c.Name == "" {
		c.Name = "verity"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 2 * time.Minute
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
