package node

// Rotate runs a certificate rotation now.
func (n *Node) Rotate() error { return n.rotate() }
