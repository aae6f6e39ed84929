package ledger

// MeterSeq is the sequence number of m's last batch.
func MeterSeq(m *Meter) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// MeterRetry makes m send c again at its next flush, as if its answer
// had been lost.
func MeterRetry(m *Meter, c Charge) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed[c.Account] = c
}
