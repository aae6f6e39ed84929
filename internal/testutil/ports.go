package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports below Linux's ephemeral range (32768–60999 by default). The
// kernel hands a listener on port 0, or a client connection, a port in
// that range only: one picked here cannot be taken by another test's
// random port between the check and the caller's own listen, as a port
// picked by listening on port 0 and closing again can.
const (
	portsLo = 20000
	portsHi = 32768
)

var (
	portsMu     sync.Mutex
	portsHanded = map[int]bool{}
)

// FreePorts returns the first of n consecutive ports on 127.0.0.1 that
// are free for both TCP and UDP and were not handed out before in this
// process. Use it where a port must be known before its server starts
// (routes of a cluster, a command's flags); a server that can take a
// listener should be given one on port 0 instead.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 500 {
		base := portsLo + rand.IntN(portsHi-portsLo-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = !portsHanded[p] && portFree(p)
		}
		if ok {
			for p := base; p < base+n; p++ {
				portsHanded[p] = true
			}
			return base
		}
	}
	t.Fatalf("testutil: no %d consecutive free ports in %d–%d", n, portsLo, portsHi)
	return 0
}

// FreePort is FreePorts(t, 1).
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}
