package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrMalformed: the head does not follow the grammar.
	ErrMalformed = errors.New("wire: malformed head")
	// ErrTooLarge: a line, the number of fields or the whole head exceeds its limit.
	ErrTooLarge = errors.New("wire: head too large")
	// ErrVersion: the protocol token is not Proto.
	ErrVersion = errors.New("wire: unsupported protocol version")
)

// HeadError describes why a head could not be read or written.
type HeadError struct {
	Op     string // "read request", "read response", "write request", "write response"
	Detail string // what was wrong, for humans
	Err    error  // ErrMalformed, ErrTooLarge, ErrVersion or an I/O error
}

func (e *HeadError) Error() string {
	if e.Detail == "" {
		return "wire: " + e.Op + ": " + e.Err.Error()
	}
	return "wire: " + e.Op + ": " + e.Detail + ": " + e.Err.Error()
}

func (e *HeadError) Unwrap() error { return e.Err }

// StatusError is a non-2xx response turned into an error: its status and the
// message the server sent as the body. The worker reports its HTTP sources'
// statuses with it too.
type StatusError struct {
	Status  int
	Message string
	// PaymentCode is the HeaderPaymentError field of a 402 response: a
	// payment.Code ("account_frozen", "bad_signature", ...) or
	// PaymentRequired.
	PaymentCode string
}

func (e *StatusError) Error() string {
	s := "wire: status " + strconv.Itoa(e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
