package wasmclient

import "time"

// Defaults of Config's zero values.
const (
	DefaultOpenTimeout   = 10 * time.Second
	DefaultIdleTimeout   = 10 * time.Second
	DefaultQuietTimeout  = 3 * time.Second
	DefaultMinRate       = 64 << 10
	DefaultDropFor       = time.Minute
	DefaultSessionTTL    = 30 * time.Second
	DefaultReportTimeout = 10 * time.Second
	DefaultHistory       = 200
	DefaultFallback      = "/.verity/v1/ipfs"

	DefaultParallelThreshold = 16 << 20
	DefaultSegmentSize       = 2 << 20
	DefaultReadAheadSegments = 6
	DefaultMaxParallel       = 3
	DefaultHedgeMin          = 200 * time.Millisecond
	DefaultHedgeMax          = 3 * time.Second
	DefaultScoreSaveEvery    = 10 * time.Second
	DefaultScoreReportEvery  = time.Minute
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
	// QuietTimeout is how long a source being opened may take to send its
	// response head before the next source is asked instead, while one is
	// left (default DefaultQuietTimeout). It is not counted as the
	// source's failure: it is not reported, but skipped for DropFor,
	// scored slow, and asked again last.
	QuietTimeout time.Duration
	// MinRate, in bytes per second, is the rate below which a source
	// delivering a body is left, while a source of another node (or the
	// gateway) is left, for it to deliver the rest (default
	// DefaultMinRate); the floor is an eighth of the best throughput
	// measured lately for a node left to ask (Scores.FreshThroughput),
	// when that is more. A source has a
	// slack of QuietTimeout: each wait of the body's reader on it spends
	// it, each byte it delivers earns 1/floor of a second back. Once per
	// body. Not a failure: not reported; the node is skipped and scored
	// only when the next source then delivers at 4 times the floor or
	// more (else the visitor's link may be what is slow).
	MinRate float64
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

	// ParallelThreshold: bodies (or ranges) of at least this many bytes are
	// fetched from several nodes at once (default DefaultParallelThreshold;
	// negative: never).
	ParallelThreshold int64
	// SegmentSize is the unit of parallel fetch, rounded up to a multiple
	// of 256 KiB (default DefaultSegmentSize).
	SegmentSize int64
	// ReadAheadSegments is the parallel read-ahead window in segments: the
	// body holds at most this many segments, so its memory is bounded by
	// ReadAheadSegments × SegmentSize (default DefaultReadAheadSegments).
	// The window opens as the reader takes bytes: one segment, then one
	// more per half segment taken.
	ReadAheadSegments int
	// MaxParallel is how many nodes serve one body at once (default
	// DefaultMaxParallel); further nodes replace failed ones.
	MaxParallel int
	// HedgeMin and HedgeMax bound the hedge delay derived from a node's
	// score (defaults DefaultHedgeMin, DefaultHedgeMax).
	HedgeMin, HedgeMax time.Duration
	// ScoreStore persists node scores across restarts; nil: not persisted.
	ScoreStore ScoreStore
	// ScoreReporter receives the scores document; nil: not reported.
	ScoreReporter ScoreReporter
	// ScoreSaveEvery and ScoreReportEvery are the least times between two
	// saves and two reports (defaults DefaultScoreSaveEvery,
	// DefaultScoreReportEvery).
	ScoreSaveEvery, ScoreReportEvery time.Duration
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
	if c.QuietTimeout <= 0 {
		c.QuietTimeout = DefaultQuietTimeout
	}
	if c.MinRate <= 0 {
		c.MinRate = DefaultMinRate
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
	if c.ParallelThreshold == 0 {
		c.ParallelThreshold = DefaultParallelThreshold
	}
	if c.SegmentSize <= 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	c.SegmentSize = (c.SegmentSize + blockAlign - 1) / blockAlign * blockAlign
	if c.ReadAheadSegments <= 0 {
		c.ReadAheadSegments = DefaultReadAheadSegments
	}
	if c.MaxParallel <= 0 {
		c.MaxParallel = DefaultMaxParallel
	}
	if c.HedgeMin <= 0 {
		c.HedgeMin = DefaultHedgeMin
	}
	if c.HedgeMax <= 0 {
		c.HedgeMax = DefaultHedgeMax
	}
	if c.HedgeMax < c.HedgeMin {
		c.HedgeMax = c.HedgeMin
	}
	if c.ScoreSaveEvery <= 0 {
		c.ScoreSaveEvery = DefaultScoreSaveEvery
	}
	if c.ScoreReportEvery <= 0 {
		c.ScoreReportEvery = DefaultScoreReportEvery
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
