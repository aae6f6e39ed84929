package gateway

import "net/http"

// ConsolePath is where the web console (Config.Console) is served on the
// gateway's own host.
const ConsolePath = "/console"

// consoleCSP lets the console's page run its own scripts and talk to
// this host only: no inline script, no other origin, no framing.
// uPlot sizes its canvas through inline styles.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveConsole serves the console's files under ConsolePath/, with
// headers that keep the page from being framed or led elsewhere.
func (g *Gateway) serveConsole(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ConsolePath {
		http.Redirect(w, r, ConsolePath+"/", http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	g.console.ServeHTTP(w, r)
}
