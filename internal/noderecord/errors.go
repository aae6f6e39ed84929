package noderecord

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	ErrMalformed         = errors.New("noderecord: malformed record")
	ErrTooLarge          = errors.New("noderecord: record too large")
	ErrPublicKey         = errors.New("noderecord: invalid public key")
	ErrNodeID            = errors.New("noderecord: node id does not match public key")
	ErrSignature         = errors.New("noderecord: invalid signature")
	ErrExpired           = errors.New("noderecord: record expired")
	ErrNotYetValid       = errors.New("noderecord: record not yet valid")
	ErrCertHash          = errors.New("noderecord: invalid certificate hash")
	ErrTooManyCertHashes = errors.New("noderecord: too many certificate hashes")
)

// RecordError says which check a record failed.
type RecordError struct {
	Field string // "signature", "id", "publicKey", "expires", "certHashes[1]", ...
	Err   error  // one of the sentinels above
}

func (e *RecordError) Error() string { return e.Err.Error() + " (" + e.Field + ")" }
func (e *RecordError) Unwrap() error { return e.Err }
