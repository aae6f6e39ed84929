package noderecord

import (
	"reflect"
	"sync"
	"time"
)

// maxVerified bounds the records a Verifier remembers.
const maxVerified = 4096

// Verifier verifies records like Signed.Verify, remembering those whose
// signature it has checked: a record seen before, unchanged, costs only the
// time checks. Servers that list the same node records on every request
// use one. The zero value is ready to use and safe for concurrent use.
type Verifier struct {
	mu   sync.Mutex
	seen map[string]Record // signature → the record it was verified over
}

// Verify reports whether s is valid at now, as Signed.Verify does.
func (v *Verifier) Verify(s Signed, now time.Time) error {
	key := string(s.Signature)
	v.mu.Lock()
	rec, ok := v.seen[key]
	v.mu.Unlock()
	if ok && reflect.DeepEqual(rec, s.Record) {
		return s.Record.checkTime(now)
	}
	if err := s.Verify(now); err != nil {
		return err
	}
	v.mu.Lock()
	if v.seen == nil || len(v.seen) >= maxVerified {
		v.seen = make(map[string]Record)
	}
	v.seen[key] = s.Record
	v.mu.Unlock()
	return nil
}
