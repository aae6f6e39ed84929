package receiptstore

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Store. Only Dir is required.
type Config struct {
	// Dir holds the log (receipts.log). Created if missing.
	Dir string

	// SyncInterval is how often written records are fsynced. Every Put is
	// written to the file before it returns, so a killed process loses
	// nothing; SyncInterval bounds what a power loss can take. Negative:
	// fsync inside every Put. Default 200 ms.
	SyncInterval time.Duration

	// CompactMinBytes: the log is compacted when it exceeds this size and
	// CompactRatio times the size of its live records. Defaults 4 MiB and 4.
	CompactMinBytes int64
	CompactRatio    int

	// Retain is how long a fully settled session is kept after its voucher
	// expired, so a late duplicate receipt is still recognised. Default 24 h.
	Retain time.Duration

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Logger default slog.Default().
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("receiptstore: Config.Dir is required")
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 200 * time.Millisecond
	}
	if c.CompactMinBytes <= 0 {
		c.CompactMinBytes = 4 << 20
	}
	if c.CompactRatio < 2 {
		c.CompactRatio = 4
	}
	if c.Retain <= 0 {
		c.Retain = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
