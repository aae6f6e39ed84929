package browser

// WebRTCLoopbackFlags let headless Chromium run WebRTC to a node on
// loopback: loopback candidates allowed, local addresses not hidden behind
// mDNS names. Use them inside a network namespace with only lo.
var WebRTCLoopbackFlags = []string{
	"allow-loopback-in-peer-connection",
	"disable-features=WebRtcHideLocalIpsWithMdns",
}
