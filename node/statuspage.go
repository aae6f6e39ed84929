package node

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// StatusPath serves the node's status as JSON; "/" serves it as a page.
const StatusPath = "/status"

// StatusReport is what an operator sees of a node: GET /status (JSON),
// GET / (HTML) and `verity node status`.
type StatusReport struct {
	ID      string    `json:"id"`
	Version string    `json:"version"`
	Region  string    `json:"region,omitempty"`
	Started time.Time `json:"started"`
	Uptime  string    `json:"uptime"`

	HTTP         string `json:"http"`
	WebTransport string `json:"webtransport,omitempty"`
	WebRTC       string `json:"webrtc,omitempty"`

	Coordinator CoordinatorStatus `json:"coordinator"`
	// Certificates are the WebTransport certificates, current first.
	Certificates []CertStatus `json:"certificates,omitempty"`
	Store        StoreStatus  `json:"store"`
	// Holdings are the roots the coordinator placed here; LocalPins the
	// operator's own imports.
	Holdings  []string       `json:"holdings"`
	LocalPins []string       `json:"localPins,omitempty"`
	Receipts  ReceiptsStatus `json:"receipts"`
	// Errors are the last warnings and errors logged, newest first.
	Errors []LoggedError `json:"errors"`
}

// CoordinatorStatus is the node's session with its coordinator.
type CoordinatorStatus struct {
	URL       string `json:"url,omitempty"` // "" when the node joins none
	Joined    bool   `json:"joined"`
	Sessions  int    `json:"sessions"`
	LastError string `json:"lastError,omitempty"`
}

// CertStatus is one WebTransport certificate.
type CertStatus struct {
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	ExpiresIn string    `json:"expiresIn"`
}

// StoreStatus is the blockstore.
type StoreStatus struct {
	Blocks  int64  `json:"blocks"`
	Counted bool   `json:"counted"` // false while the start-up count runs (Blocks reads 0)
	Bytes   uint64 `json:"bytes"`   // on disk
	// Capacity and Free are the storage offered and what is free of it.
	Capacity int64 `json:"capacity"`
	Free     int64 `json:"free"`
}

// ReceiptsStatus is what visitors owe and paid: receipts kept locally,
// pending settlement, and what the ledger settled.
type ReceiptsStatus struct {
	Sessions     int               `json:"sessions"`
	PendingBytes uint64            `json:"pendingBytes"` // receipted, not settled yet
	SettledBytes uint64            `json:"settledBytes"` // settled by the ledger (sessions still kept)
	PendingBy    map[string]uint64 `json:"pendingByAccount,omitempty"`
}

// StatusReport gathers the node's status.
func (n *Node) StatusReport(ctx context.Context) StatusReport {
	now := n.cfg.Now()
	rep := StatusReport{
		ID: n.id, Version: n.cfg.Version, Region: n.cfg.Region,
		Started: n.started, Uptime: now.Sub(n.started).Round(time.Second).String(),
		HTTP: n.httpURL, WebTransport: n.wtURL,
		Holdings: n.Pins(), Errors: n.recent.list(),
	}
	if a := n.WebRTCAddr(); a != nil {
		rep.WebRTC = a.String()
	}
	if st, ok := n.CoordinatorState(); ok {
		rep.Coordinator = CoordinatorStatus{URL: n.cfg.Coordinator, Joined: st.Joined, Sessions: st.Joins}
		if st.LastErr != nil {
			rep.Coordinator.LastError = st.LastErr.Error()
		}
	} else {
		rep.Coordinator.URL = n.cfg.Coordinator
	}
	if n.certs != nil {
		cur, next := n.certs.pair()
		for _, c := range []*wtCert{cur, next} {
			if c != nil {
				rep.Certificates = append(rep.Certificates, CertStatus{
					SHA256: hex.EncodeToString(c.hash[:]), NotBefore: c.notBefore, NotAfter: c.notAfter,
					ExpiresIn: c.notAfter.Sub(now).Round(time.Minute).String(),
				})
			}
		}
	}
	hb := n.Status()
	rep.Store = StoreStatus{Blocks: hb.Blocks, Counted: n.blocksCounted.Load(), Capacity: hb.Capacity, Free: hb.FreeDisk}
	if b := n.storedBytes(); b > 0 {
		rep.Store.Bytes = uint64(b)
	}
	n.pinMu.Lock()
	for r := range n.localPins {
		rep.LocalPins = append(rep.LocalPins, r)
	}
	n.pinMu.Unlock()
	slices.Sort(rep.LocalPins)
	if n.pay != nil && n.pay.store != nil {
		rep.Receipts = n.pay.receiptsStatus()
	}
	if rep.Holdings == nil {
		rep.Holdings = []string{}
	}
	if rep.Errors == nil {
		rep.Errors = []LoggedError{}
	}
	return rep
}

//go:embed status.html
var statusFS embed.FS

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"bytes":  humanBytes,
	"ibytes": func(n int64) string { return humanBytes(uint64(max(n, 0))) },
	"short": func(s string) string {
		if len(s) > 20 {
			return s[:10] + "…" + s[len(s)-8:]
		}
		return s
	},
	"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
}).ParseFS(statusFS, "status.html"))

// statusAllowed reports whether r may read the status: from loopback
// always, from elsewhere only with Config.StatusPublic (the page names
// accounts, sessions and errors an operator may not want to publish).
func (n *Node) statusAllowed(w http.ResponseWriter, r *http.Request) bool {
	if n.cfg.StatusPublic {
		return true
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
			return true
		}
	}
	http.Error(w, "the node's status is served to loopback only (verity node --status-public to publish it)", http.StatusForbidden)
	return false
}

// serveStatus answers GET /status with the report as JSON.
func (n *Node) serveStatus(w http.ResponseWriter, r *http.Request) {
	if !n.statusAllowed(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(n.StatusReport(r.Context()))
}

// serveStatusPage answers GET / with the report as a page.
func (n *Node) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if !n.statusAllowed(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = statusPage.Execute(w, n.StatusReport(r.Context()))
}

// humanBytes prints n in binary units.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return itoa(n) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	whole := n / div
	tenth := (n % div) * 10 / div
	return itoa(whole) + "." + itoa(tenth) + " " + string("KMGTPE"[exp]) + "iB"
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// statusTitle is used by the page.
func (r StatusReport) State() string {
	switch {
	case r.Coordinator.URL == "":
		return "serving (joined to no coordinator)"
	case r.Coordinator.Joined:
		return "serving, joined"
	default:
		return "serving, not joined: " + strings.TrimSpace(r.Coordinator.LastError)
	}
}
