package wasmclient

import "time"

// Defaults of Config's zero values.
const (
	DefaultOpenTimeout   = 10 * time.Second
	DefaultIdleTimeout   = 10 * time.Second
	DefaultDropFor       = time.Minute
	DefaultSessionTTL    = 30 * time.Second
	DefaultReportTimeout = 10 * time.Second
	DefaultHistory       = 200
	DefaultFallback      = "/.verity/v1/ipfs"
)

// Config configures a Client. Zero values are the documented defaults.
type Config struct {
	// Session loads the session document (required).
	Session SessionLoader
	// Transports are tried in order for every node of the session.
	Transports []Transport
	// Fallback fetches from the gateway's trustless endpoint (the session's
	// "fallback" path) after every node has failed. Nil: no fallback.
	Fallback Transport
	// Reporter receives reports about failing nodes. Nil: reports are only
	// kept in Stats.
	Reporter Reporter
	// Logger; nil discards. A *slog.Logger fits.
	Logger Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// OpenTimeout bounds opening one source up to its entity being verified
	// (default DefaultOpenTimeout).
	OpenTimeout time.Duration
	// IdleTimeout bounds the time a source may go without delivering
	// verified bytes (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// DropFor is how long a failing node is skipped (default DefaultDropFor).
	DropFor time.Duration
	// SessionTTL is used when the session document has no ttl (default
	// DefaultSessionTTL).
	SessionTTL time.Duration
	// ReportTimeout bounds one Reporter call (default DefaultReportTimeout).
	ReportTimeout time.Duration
	// History is how many request records and reports Stats keeps
	// (default DefaultHistory).
	History int
	// NoPayments: never ask for a voucher; requests to nodes are unpaid.
	NoPayments bool
}

func (c Config) normalize() Config {
	if c.Logger == nil {
		c.Logger = nopLogger{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DropFor <= 0 {
		c.DropFor = DefaultDropFor
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.ReportTimeout <= 0 {
		c.ReportTimeout = DefaultReportTimeout
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	return c
}

// Logger is the logging the client does; *slog.Logger satisfies it. The
// worker passes a console logger instead, which keeps log/slog out of the
// wasm.
type Logger interface {
	Debug(msg string, args ...any)
	Warn(msg string, args ...any)
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Warn(string, ...any)  {}
