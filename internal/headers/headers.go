// Package headers parses a site's _headers file, in the format of Netlify
// and Cloudflare Pages, and says which response headers a request path
// gets:
//
//	# a comment
//	/assets/*
//	  Cache-Control: public, max-age=31536000, immutable
//	/blog/:slug
//	  X-Robots-Tag: noindex
//	  ! X-Frame-Options
//
// A line starting at column 0 is a path pattern; the indented lines under
// it set a header ("Name: value") or detach one ("! Name"). A pattern is a
// path starting with /; a segment ":name" matches one path segment, and
// one "*" (the splat) matches any run of characters, slashes included.
// Values may name the pattern's placeholders (":name", ":splat"), which
// are replaced by what they matched. Every rule whose pattern matches
// applies, in file order: a header set by several rules gets their values
// joined with ", "; "! Name" removes Name as set by earlier rules and the
// server's own default for it.
//
// Headers that belong to the protocol, to the gateway or to the service
// worker cannot be set or detached (see Denied); a file naming one does
// not parse. The file is at most 64 KiB.
//
// Each pattern is compiled to a regular expression (Rule.Pattern) in the
// syntax common to Go's regexp and JavaScript's RegExp, so the service
// worker applies the very rules the gateway publishes in the session.
package headers

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// FileName is the rules file's name, at the site's root.
const FileName = "_headers"

// MaxSize is the largest file accepted.
const MaxSize = 64 << 10

// MaxRules bounds the path patterns of one file.
const MaxRules = 1024

// MaxPatternBytes bounds one pattern.
const MaxPatternBytes = 1024

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("headers: invalid _headers file")

// denied are the header names a site may neither set nor detach
// (canonical form), and deniedPrefixes the prefixes of such names:
//   - message framing and connection management, which are the server's
//     (Content-Length, Content-Range, Transfer-Encoding, ...);
//   - what the gateway states about the verified content: its type and
//     CID (Content-Type, X-Content-Type-Options, ETag, Accept-Ranges) and
//     its timing and Verity headers (Server-Timing, X-Verity-*);
//   - state and authority the origin shares with the gateway and the
//     service worker: cookies, authentication, the worker's scope
//     (Service-Worker-Allowed), wiping the worker (Clear-Site-Data),
//     transport policy (Strict-Transport-Security, Alt-Svc) and redirects
//     (Location, Refresh: use _redirects).
var denied = map[string]bool{
	"Accept-Ranges": true, "Age": true, "Alt-Svc": true, "Authorization": true,
	"Clear-Site-Data": true, "Connection": true, "Content-Digest": true,
	"Content-Encoding": true, "Content-Length": true, "Content-Location": true,
	"Content-Range": true, "Content-Type": true, "Date": true, "Digest": true,
	"Etag": true, "Keep-Alive": true, "Last-Modified": true, "Location": true,
	"Public-Key-Pins": true, "Public-Key-Pins-Report-Only": true, "Refresh": true,
	"Repr-Digest": true, "Server": true, "Server-Timing": true,
	"Service-Worker-Allowed": true, "Set-Cookie": true, "Set-Cookie2": true,
	"Strict-Transport-Security": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Www-Authenticate": true,
	"X-Content-Type-Options": true,
}

var deniedPrefixes = []string{"Proxy-", "Sec-", "X-Verity-"}

// Denied reports whether a site may not set or detach the header name.
func Denied(name string) bool {
	c := http.CanonicalHeaderKey(name)
	if denied[c] {
		return true
	}
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

// Header is one header a rule sets.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Rule is one path pattern and the headers under it.
type Rule struct {
	// For is the pattern as written.
	For string `json:"for"`
	// Pattern is For as an anchored regular expression over the URL
	// path (escaped, as requested); its groups are Names, in order.
	Pattern string `json:"pattern"`
	// Names are the placeholders of For (":slug", ":splat").
	Names  []string `json:"names,omitempty"`
	Set    []Header `json:"set,omitempty"`
	Detach []string `json:"detach,omitempty"`

	re *regexp.Regexp
}

// Rules are a parsed file, in order.
type Rules []Rule

// Parse parses a _headers file. An error names the first bad line.
func Parse(b []byte) (Rules, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxSize)
	}
	var rules Rules
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		fail := func(msg string) error {
			return &LineError{Line: n + 1, Msg: msg}
		}
		if line[0] != ' ' && line[0] != '\t' {
			if len(rules) == MaxRules {
				return nil, fail("more than " + strconv.Itoa(MaxRules) + " path patterns")
			}
			r, err := compile(trimmed)
			if err != nil {
				return nil, fail(err.Error())
			}
			rules = append(rules, r)
			continue
		}
		if len(rules) == 0 {
			return nil, fail("a header line before any path line (path lines start at column 0, header lines are indented)")
		}
		r := &rules[len(rules)-1]
		if name, ok := strings.CutPrefix(trimmed, "!"); ok {
			name = strings.TrimSpace(name)
			if err := checkName(name); err != nil {
				return nil, fail(err.Error())
			}
			r.Detach = append(r.Detach, http.CanonicalHeaderKey(name))
			continue
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			return nil, fail("want \"Name: value\" or \"! Name\", got " + strconv.Quote(clip(trimmed)))
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if err := checkName(name); err != nil {
			return nil, fail(err.Error())
		}
		if !validValue(value) {
			return nil, fail("the value of " + name + " has a control character")
		}
		r.Set = append(r.Set, Header{Name: http.CanonicalHeaderKey(name), Value: value})
	}
	return rules, nil
}

// LineError is a parse error at one line of the file.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	return ErrInvalid.Error() + ": line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Unwrap makes a LineError an ErrInvalid.
func (e *LineError) Unwrap() error { return ErrInvalid }

func checkName(name string) error {
	if name == "" || !validName(name) {
		return errors.New("header name " + strconv.Quote(clip(name)) + " is not a valid token")
	}
	if Denied(name) {
		return errors.New("header " + http.CanonicalHeaderKey(name) + " cannot be set or detached by a site (it is the server's)")
	}
	return nil
}

// compile turns a pattern into its anchored regular expression.
func compile(pat string) (Rule, error) {
	if len(pat) > MaxPatternBytes {
		return Rule{}, errors.New("a pattern longer than " + strconv.Itoa(MaxPatternBytes) + " bytes")
	}
	if !strings.HasPrefix(pat, "/") {
		return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + " does not start with / (absolute URLs are not supported)")
	}
	if strings.ContainsAny(pat, "?# \t") {
		return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + ": spaces, query and fragment are not supported")
	}
	if strings.Count(pat, "*") > 1 {
		return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + " has more than one *")
	}
	r := Rule{For: pat}
	var re strings.Builder
	re.WriteString("^")
	lit := 0 // start of the pending literal
	flush := func(i int) { re.WriteString(regexp.QuoteMeta(pat[lit:i])) }
	for i := 0; i < len(pat); i++ {
		switch {
		case pat[i] == '*':
			flush(i)
			re.WriteString("(.*)")
			r.Names = append(r.Names, ":splat")
			lit = i + 1
		case pat[i] == ':' && i > 0 && pat[i-1] == '/':
			j := i + 1
			for j < len(pat) && isNameByte(pat[j]) {
				j++
			}
			if j == i+1 || (j < len(pat) && pat[j] != '/') {
				return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + ": a placeholder is a whole segment :name (letters, digits, _)")
			}
			name := pat[i:j]
			for _, n := range r.Names {
				if n == name {
					return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + " names " + name + " twice")
				}
			}
			flush(i)
			re.WriteString("([^/]+)")
			r.Names = append(r.Names, name)
			lit = j
			i = j - 1
		}
	}
	flush(len(pat))
	re.WriteString("$")
	r.Pattern = re.String()
	var err error
	if r.re, err = regexp.Compile(r.Pattern); err != nil {
		return Rule{}, errors.New("path " + strconv.Quote(clip(pat)) + ": " + err.Error())
	}
	return r, nil
}

func isNameByte(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// validName reports whether s is an RFC 9110 token.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isNameByte(c) || strings.IndexByte("!#$%&'*+-.^`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validValue reports whether s has no control characters but tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Result is what the rules say for one path: headers to set (values of
// several rules joined) and headers to remove.
type Result struct {
	Set    http.Header
	Remove []string
}

// Match returns the headers that apply to path (a URL path, escaped as
// requested), or a zero Result when no rule matches.
func (rs Rules) Match(path string) Result {
	var res Result
	for i := range rs {
		r := &rs[i]
		if r.re == nil {
			continue
		}
		m := r.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		if res.Set == nil {
			res.Set = http.Header{}
		}
		for _, n := range r.Detach {
			res.Set.Del(n)
			res.Remove = append(res.Remove, n)
		}
		for _, h := range r.Set {
			v := substitute(h.Value, r.Names, m[1:])
			if !validValue(v) {
				continue // a placeholder matched a control character
			}
			if old := res.Set.Get(h.Name); old != "" {
				v = old + ", " + v
			}
			res.Set.Set(h.Name, v)
		}
	}
	return res
}

// Apply applies res to h: it removes the detached headers, then sets the
// others (replacing the server's defaults). On an error response
// (errorStatus), Cache-Control is left as the server set it: an error page
// is never made cacheable by a rule meant for the file.
func (res Result) Apply(h http.Header, errorStatus bool) {
	for _, n := range res.Remove {
		if errorStatus && n == "Cache-Control" {
			continue
		}
		h.Del(n)
	}
	for n, v := range res.Set {
		if errorStatus && n == "Cache-Control" {
			continue
		}
		h[n] = v
	}
}

// substitute replaces each placeholder in v, longest names first so that
// :id does not eat :identity.
func substitute(v string, names, values []string) string {
	if len(names) == 0 || !strings.Contains(v, ":") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		if v[i] == ':' {
			best := -1
			for j, n := range names {
				if strings.HasPrefix(v[i:], n) && (best < 0 || len(n) > len(names[best])) {
					best = j
				}
			}
			if best >= 0 {
				b.WriteString(values[best])
				i += len(names[best])
				continue
			}
		}
		b.WriteByte(v[i])
		i++
	}
	return b.String()
}
