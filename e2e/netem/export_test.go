package netem

// QueuedUpForTest is the number of bytes queued in the up lines (client to
// target) of the proxy's connections, not counting a packet each line
// holds until its arrival time.
func (p *TCPProxy) QueuedUpForTest() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for tp := range p.pairs {
		tp.up.mu.Lock()
		n += tp.up.bytes
		tp.up.mu.Unlock()
	}
	return n
}
