package netem

import (
	"errors"
	"io"
	"log/slog"
	"time"
)

// ErrConfig: an invalid Config.
var ErrConfig = errors.New("netem: invalid config")

// Link shapes one direction of a forwarder.
type Link struct {
	// Delay is the one-way latency added to every byte.
	Delay time.Duration
	// Rate caps the direction's bandwidth in bytes per second (0: none).
	Rate int64
}

// Config configures a TCP or UDP forwarder.
type Config struct {
	// Target is the address forwarded to (required).
	Target string
	// Listen is the address to listen on (default "127.0.0.1:0").
	Listen string
	// Up shapes client → target; Down shapes target → client.
	Up, Down Link
	// QueueBytes bounds the bytes queued in each direction (default 4 MiB).
	QueueBytes int
	// IdleTimeout ends a UDP client session without traffic (default 1 min).
	IdleTimeout time.Duration
	// MaxSessions bounds the UDP client sessions (default 1024).
	MaxSessions int
	// Logger (default: discard).
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	if c.Target == "" {
		return c, errors.Join(ErrConfig, errors.New("Target is required"))
	}
	if c.Up.Delay < 0 || c.Down.Delay < 0 || c.Up.Rate < 0 || c.Down.Rate < 0 || c.QueueBytes < 0 {
		return c, errors.Join(ErrConfig, errors.New("negative delay, rate or queue"))
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 4 << 20
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = time.Minute
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}
