// Package redirects parses a site's _redirects file and matches request
// paths against it, with the semantics of the IPFS web-gateway
// "_redirects" specification (the Netlify-compatible subset): one rule a
// line, "from to [status]"; from is a path whose segments may be
// :placeholders and whose last segment may be a * splat; to is a path or
// an http(s) URL into which :placeholders and :splat are substituted;
// status is 200 (a rewrite: the target is served at the requested URL),
// 301 (the default), 302, 303, 307 or 308 (redirects), or 404, 410 or
// 451 (the target is served with that status). Lines starting with # are
// comments. Rules are evaluated in order, the first that matches wins, and
// only for a path the site does not have. The file is at most 64 KiB.
//
// The same code decides on the gateway's first visits and in the
// service worker, so it uses the standard library's strings and strconv
// only (the worker links no fmt).
package redirects

import (
	"errors"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/errfmt"
)

// FileName is the rules file's name, at the site's root.
const FileName = "_redirects"

// MaxSize is the largest rules file accepted.
const MaxSize = 64 << 10

// MaxRules bounds the rules of one file (a 64 KiB file of the shortest
// lines would have ~10,000).
const MaxRules = 4096

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("redirects: invalid _redirects file")

// Rule is one line of the file.
type Rule struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Status int    `json:"status"`
	Line   int    `json:"line"` // in the file, from 1
}

// Rules are a parsed file, in order.
type Rules []Rule

// Parse parses a _redirects file. An error names the first bad line.
func Parse(b []byte) (Rules, error) {
	if len(b) > MaxSize {
		return nil, errfmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxSize)
	}
	var rules Rules
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseLine(line)
		if err != nil {
			return nil, errfmt.Errorf("%w: line %d: %s", ErrInvalid, n+1, err.Error())
		}
		r.Line = n + 1
		if len(rules) == MaxRules {
			return nil, errfmt.Errorf("%w: more than %d rules", ErrInvalid, MaxRules)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseLine(line string) (Rule, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return Rule{}, errors.New("want \"from to [status]\"")
	}
	if len(f) > 3 {
		return Rule{}, errors.New("too many fields (conditions and forcing with ! are not supported)")
	}
	r := Rule{From: f[0], To: f[1], Status: 301}
	if len(f) == 3 {
		s, err := strconv.Atoi(f[2])
		if err != nil || !validStatus(s) {
			return Rule{}, errors.New("status " + strconv.Quote(f[2]) + " is not one of 200, 301, 302, 303, 307, 308, 404, 410, 451")
		}
		r.Status = s
	}
	if !strings.HasPrefix(r.From, "/") {
		return Rule{}, errors.New("from " + strconv.Quote(r.From) + " is not a path starting with /")
	}
	if strings.ContainsAny(r.From, "?#") {
		return Rule{}, errors.New("from " + strconv.Quote(r.From) + ": query and fragment matching are not supported")
	}
	if i := strings.IndexByte(r.From, '*'); i >= 0 && i != len(r.From)-1 {
		return Rule{}, errors.New("from " + strconv.Quote(r.From) + ": * is allowed only at the end")
	}
	isURL := strings.HasPrefix(r.To, "http://") || strings.HasPrefix(r.To, "https://")
	switch {
	case !isURL && !strings.HasPrefix(r.To, "/"):
		return Rule{}, errors.New("to " + strconv.Quote(r.To) + " is neither a path starting with / nor an http(s) URL")
	case isURL && r.Status != 301 && r.Status != 302 && r.Status != 303 && r.Status != 307 && r.Status != 308:
		return Rule{}, errors.New("to " + strconv.Quote(r.To) + ": a URL needs a redirect status (301, 302, 303, 307, 308)")
	}
	return r, nil
}

func validStatus(s int) bool {
	switch s {
	case 200, 301, 302, 303, 307, 308, 404, 410, 451:
		return true
	}
	return false
}

// maxHops is the longest chain of redirects Loop accepts.
const maxHops = 8

// loopSegment stands for a placeholder's or a splat's value in the paths
// Loop follows: a name no site is likely to have, since rules apply only
// to paths the site does not have.
const loopSegment = "_verity-loop-check_"

// Loop reports a redirect chain that never ends: starting from each
// rule's own from (placeholders and the splat standing for a path the
// site does not have), it follows the redirects the rules answer, as a
// browser would, and returns an error naming the lines when a path comes
// back or the chain is longer than 8 redirects. A chain ends at a path
// exists reports (the site serves it: rules apply only to paths it does
// not have; nil for none); rewrites (200) and error pages (404, 410, 451)
// end it too, their target being served, not matched again.
func (rs Rules) Loop(exists func(path string) bool) error {
	for _, r := range rs {
		path := strings.ReplaceAll(r.From, "*", loopSegment)
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if len(s) > 1 && s[0] == ':' {
				segs[i] = loopSegment
			}
		}
		path = strings.Join(segs, "/")
		seen := map[string]bool{path: true}
		lines := []string{}
		for hop := 0; ; hop++ {
			to, status, line, ok := rs.match(path)
			if !ok || !IsRedirect(status) || !strings.HasPrefix(to, "/") {
				break
			}
			to, _, _ = strings.Cut(to, "?")
			if exists != nil && exists(to) {
				break
			}
			lines = append(lines, "line "+strconv.Itoa(line)+" redirects "+path+" to "+to)
			if seen[to] || hop == maxHops {
				why := "comes back to " + to
				if !seen[to] {
					why = "is more than " + strconv.Itoa(maxHops) + " redirects long"
				}
				return errfmt.Errorf("%w: a redirect loop for paths the site does not have (%s); it %s: a rule before these for the paths they lead to (such as a 404) ends it", ErrInvalid, strings.Join(lines, ", "), why)
			}
			seen[to] = true
			path = to
		}
	}
	return nil
}

// IsRedirect reports whether status sends the browser elsewhere (a
// Location), rather than serving the target at the requested URL.
func IsRedirect(status int) bool { return status >= 300 && status < 400 }

// Match returns the first rule matching path (a URL path, as requested)
// with its placeholders substituted into To. ok is false when no rule
// matches.
func (rs Rules) Match(path string) (to string, status int, ok bool) {
	to, status, _, ok = rs.match(path)
	return to, status, ok
}

// match is Match, with the matching rule's line.
func (rs Rules) match(path string) (to string, status, line int, ok bool) {
	for _, r := range rs {
		if to, ok := r.match(path); ok {
			return to, r.Status, r.Line, true
		}
	}
	return "", 0, 0, false
}

func (r Rule) match(path string) (string, bool) {
	from := r.From
	splat, hasSplat := "", strings.HasSuffix(from, "*")
	if hasSplat {
		from = from[:len(from)-1]
	}
	fs := strings.Split(from, "/")
	ps := strings.Split(path, "/")
	if hasSplat {
		// from ends with "/" (or is "/"): the last, empty segment
		// stands for the rest of the path, which may be empty.
		fs = fs[:len(fs)-1]
		if len(ps) < len(fs) || (len(ps) == len(fs) && !strings.HasSuffix(from, "/")) {
			return "", false
		}
		if len(ps) == len(fs) {
			ps = append(ps, "")
		}
		splat = strings.Join(ps[len(fs):], "/")
		ps = ps[:len(fs)]
	} else if len(ps) == len(fs)+1 && ps[len(ps)-1] == "" {
		ps = ps[:len(ps)-1] // a trailing slash matches too
	}
	if len(ps) != len(fs) {
		return "", false
	}
	var names, values []string
	for i, seg := range fs {
		if len(seg) > 1 && seg[0] == ':' {
			if ps[i] == "" {
				return "", false
			}
			names, values = append(names, seg), append(values, ps[i])
			continue
		}
		if seg != ps[i] {
			return "", false
		}
	}
	if hasSplat {
		names, values = append(names, ":splat"), append(values, splat)
	}
	to := substitute(r.To, names, values)
	if strings.HasPrefix(r.To, "/") {
		// A path stays a path on this origin: "//host" or "/\host" would
		// send the browser to another one (an open redirect by way of
		// a splat such as /go//evil.example).
		to = "/" + strings.TrimLeft(to, "/\\")
	}
	return to, true
}

// substitute replaces each :name segment part in to, longest names first
// so that :id does not eat :identity.
func substitute(to string, names, values []string) string {
	if len(names) == 0 {
		return to
	}
	var b strings.Builder
	for i := 0; i < len(to); {
		if to[i] == ':' {
			best := -1
			for j, n := range names {
				if strings.HasPrefix(to[i:], n) && (best < 0 || len(n) > len(names[best])) {
					best = j
				}
			}
			if best >= 0 {
				b.WriteString(values[best])
				i += len(names[best])
				continue
			}
		}
		b.WriteByte(to[i])
		i++
	}
	return b.String()
}
