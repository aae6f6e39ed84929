package payment

import "errors"

// Sentinel errors; match them with errors.Is. Each has a stable wire code
// (Code) that a node sends back to a worker and a coordinator to a node.
var (
	// ErrMalformed: bytes that are not a canonical encoding (wrong version,
	// wrong length, trailing bytes, invalid account name, zero budget...).
	ErrMalformed = errors.New("payment: malformed")
	// ErrBadSignature: a voucher not signed by its gateway key or a receipt
	// not signed by its session key.
	ErrBadSignature = errors.New("payment: bad signature")
	// ErrUnknownGateway: a voucher signed by a key id the verifier does not
	// know.
	ErrUnknownGateway = errors.New("payment: unknown gateway key")
	// ErrExpired: the voucher's expiry has passed.
	ErrExpired = errors.New("payment: voucher expired")
	// ErrWrongNode: a receipt made out to another node.
	ErrWrongNode = errors.New("payment: receipt for another node")
	// ErrWrongSession: a receipt for another voucher or session key.
	ErrWrongSession = errors.New("payment: receipt for another session")
	// ErrNotMonotonic: a receipt whose sequence does not increase or whose
	// byte count goes backwards.
	ErrNotMonotonic = errors.New("payment: receipt not monotonic")
	// ErrOverBudget: bytes beyond the voucher's budget.
	ErrOverBudget = errors.New("payment: over budget")
	// ErrOldVoucher: a voucher of encoding version 1, which names no nodes
	// and caps none; the worker asks the gateway for a new one.
	ErrOldVoucher = errors.New("payment: voucher version 1 is no longer accepted: ask the gateway for a new voucher")
	// ErrAccountFrozen: the paying account is below its freezing threshold;
	// nodes refuse its sessions and the worker falls back to the gateway.
	ErrAccountFrozen = errors.New("payment: account frozen")
)

// Error says what was being checked when a sentinel error occurred.
type Error struct {
	Op    string // "voucher", "receipt", "signer"
	Field string // the offending field, when one is to blame
	Err   error  // one of the sentinels above
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Err.Error() + " (" + e.Op + ")"
	}
	return e.Err.Error() + " (" + e.Op + " " + e.Field + ")"
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(op, field string, err error) error { return &Error{Op: op, Field: field, Err: err} }

// Stable wire codes of the sentinel errors.
var codes = []struct {
	err  error
	code string
}{
	{ErrMalformed, "malformed"},
	{ErrBadSignature, "bad_signature"},
	{ErrUnknownGateway, "unknown_gateway"},
	{ErrExpired, "expired"},
	{ErrWrongNode, "wrong_node"},
	{ErrWrongSession, "wrong_session"},
	{ErrNotMonotonic, "not_monotonic"},
	{ErrOverBudget, "over_budget"},
	{ErrAccountFrozen, "account_frozen"},
	{ErrOldVoucher, "old_voucher"},
}

// Code returns the stable wire code of err ("bad_signature", "expired", ...),
// or "" when err wraps none of this package's sentinels.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// CodeError returns the sentinel for a wire code, or nil for an unknown code.
func CodeError(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}
