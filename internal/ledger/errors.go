package ledger

import (
	"errors"
	"strconv"
)

// Sentinel errors; match them with errors.Is. Item rejections also wrap
// the payment package's sentinels (payment.ErrBadSignature, ...).
var (
	// ErrUnknownAccount: no such account.
	ErrUnknownAccount = errors.New("ledger: unknown account")
	// ErrAccountExists: CreateAccount of an existing name.
	ErrAccountExists = errors.New("ledger: account exists")
	// ErrInvalidAccount: not 1–64 bytes of [a-z0-9._-].
	ErrInvalidAccount = errors.New("ledger: invalid account name")
	// ErrWrongAccount: a batch item whose voucher names another account.
	ErrWrongAccount = errors.New("ledger: voucher for another account")
	// ErrInvalidBatch: an empty batch or one of more than MaxBatchItems.
	ErrInvalidBatch = errors.New("ledger: invalid batch")
	// ErrInvalidCharge: a Charge without gateway, Seq or bytes, or whose
	// sites add up beyond MaxAmount.
	ErrInvalidCharge = errors.New("ledger: invalid charge")
	// ErrInvalidAmount: a TopUp of 0 bytes or beyond MaxAmount, or one
	// that would take the balance beyond MaxAmount.
	ErrInvalidAmount = errors.New("ledger: invalid amount")
	// ErrInsufficientFunds: a Hold the account's available funds
	// (balance − held) do not cover.
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	// ErrClosed: the Ledger was used after Close.
	ErrClosed = errors.New("ledger: closed")
)

// ItemError is why one batch item was refused.
type ItemError struct {
	Index int   // position in nodeproto.Batch.Items
	Err   error // wraps a payment sentinel or ErrWrongAccount
}

func (e *ItemError) Error() string {
	return "ledger: item " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

func (e *ItemError) Unwrap() error { return e.Err }

// RejectedError lists the refused items of a batch whose other items were
// applied. errors.Is sees through it to each item's error.
type RejectedError struct {
	Items []*ItemError
}

func (e *RejectedError) Error() string {
	s := "ledger: " + strconv.Itoa(len(e.Items)) + " batch item(s) refused"
	if len(e.Items) > 0 {
		s += ", first: " + e.Items[0].Error()
	}
	return s
}

func (e *RejectedError) Unwrap() []error {
	out := make([]error, len(e.Items))
	for i, it := range e.Items {
		out[i] = it
	}
	return out
}
