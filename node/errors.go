package node

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrConfig: a Config field is invalid.
	ErrConfig = errors.New("node: invalid config")
	// ErrBadCAR: a CAR could not be imported (malformed, or a block does
	// not match its CID, or a block is too large). Nothing was stored.
	ErrBadCAR = errors.New("node: bad CAR")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("node: closed")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("node: already running")
)

// ConfigError names the invalid Config field.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "node: config " + e.Field + ": " + e.Reason }
func (e *ConfigError) Unwrap() error { return ErrConfig }
