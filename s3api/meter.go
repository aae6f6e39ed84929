package s3api

import "context"

// Metering of the bytes served, with a ledger.Meter. Every byte of an object a GET answers
// (a whole object or a range; not HEAD, listings or errors) is added up
// in memory per account and bucket and charged to the bucket owner's
// account every MeterInterval, as the gateway's meter charges what it
// serves itself: one ledger compare-and-set per account per interval.
// Each batch carries a sequence number that grows across batches and
// restarts (it starts at the clock in nanoseconds) under the charger
// name MeterName, so the ledger applies it once; a batch that failed is
// retried as is before anything newer of that account is sent. The
// owner pays, not the requester: a presigned URL is the owner's
// signature, whoever uses it.

// ErrAccountOutOfCredit refuses a GET of an object whose bucket's
// account is frozen, or would be once what was served and not charged
// yet is: its objects are not served on credit, as nodes refuse a
// frozen account's sites. S3's code for an account that may not do what
// is asked, with a message that says why.
var ErrAccountOutOfCredit = &Error{Code: "AccountProblem", Status: 403, Message: "The bucket's account is out of credit (frozen: its balance is below its threshold): its objects are not served until its owner tops it up. Listing, HEAD and DELETE still work."}

// checkReader refuses serving the objects of a bucket whose account
// (owner) is frozen, or whose balance less what was served and not
// charged yet is below its threshold, when Accounts is set.
func (s *Server) checkReader(ctx context.Context, owner string) error {
	if s.cfg.Accounts == nil {
		return nil
	}
	a, err := s.cfg.Accounts.Account(ctx, owner)
	if err != nil {
		return err
	}
	if a.Frozen || a.Balance-s.unbilled(owner) < a.FreezeBelow {
		return ErrAccountOutOfCredit
	}
	return nil
}

// unbilled is what owner was served and not charged yet (0 without
// metering).
func (s *Server) unbilled(owner string) int64 {
	if s.meter == nil {
		return 0
	}
	return s.meter.Unbilled(owner)
}
