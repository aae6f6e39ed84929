package events

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrClosed is returned by a Bus or Subscription used after Close/Stop.
	ErrClosed = errors.New("events: closed")
	// ErrInvalidEvent is returned for an event without id or with an invalid
	// type, or for a message that is not a valid envelope.
	ErrInvalidEvent = errors.New("events: invalid event")
	// ErrUnknownBucket is returned by KV for a bucket the Bus does not hold.
	ErrUnknownBucket = errors.New("events: unknown KV bucket")
	// ErrNoChange is returned by an Update function to leave the key as it
	// is; Update then returns the current revision and a nil error.
	ErrNoChange = errors.New("events: no change")
	// ErrConflict is returned by Update after MaxUpdateAttempts revision
	// conflicts in a row.
	ErrConflict = errors.New("events: too many concurrent updates")
	// ErrServer is returned by Open when the embedded server cannot start.
	ErrServer = errors.New("events: embedded NATS server")
)

// EventError says which field of an event is invalid.
type EventError struct {
	Field string // "id", "type", "data", "envelope"
	Err   error  // ErrInvalidEvent
}

func (e *EventError) Error() string { return e.Err.Error() + " (" + e.Field + ")" }
func (e *EventError) Unwrap() error { return e.Err }
