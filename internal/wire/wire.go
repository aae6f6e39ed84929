package wire

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Proto is the protocol token at the start of every frame head.
const Proto = "VERITY/1"

// Limits on a head. A reader rejects anything larger with ErrTooLarge.
const (
	MaxLineBytes    = 8 << 10  // one start line, CRLF included
	MaxHeaderFields = 32       // header fields in one head
	MaxHeadBytes    = 16 << 10 // the whole head, final CRLF included
	MaxErrorBody    = 4 << 10  // body of a non-2xx response
)

// Request is the head a client writes on a new stream.
//
//	VERITY/1 GET <target>\r\n
//	name: value\r\n ...
//	\r\n
type Request struct {
	Method string // only "GET" for now; empty means GET when writing
	Target string // "/ipfs/<cid>/<path>?format=car&..." as on HTTP
	Header Header
}

// Response is the head a server writes before the body.
//
//	VERITY/1 200 OK\r\n
//	name: value\r\n ...
//	\r\n
//	<body until FIN>
type Response struct {
	Status int
	Reason string
	Header Header
}

// Header holds header fields with lower-case names.
type Header map[string]string

// Get returns the value of the field name (any case), or "".
func (h Header) Get(name string) string { return h[strings.ToLower(name)] }

// Set sets the field name (stored lower-cased) to value.
func (h Header) Set(name, value string) { h[strings.ToLower(name)] = value }

// Stream error codes a server uses when it resets a stream mid-body.
const (
	CodeInternal  = 0x01 // server failed mid-response
	CodeCancelled = 0x02 // server is shutting down
	CodeTimeout   = 0x03 // idle or overall timeout
	// CodePaymentRefused: a receipt the client sent on the stream was
	// refused (forged, for another node or session, not monotonic, over
	// budget, voucher expired).
	CodePaymentRefused = 0x04
	// CodePaymentTimeout: the credit window was spent and no receipt
	// came in time.
	CodePaymentTimeout = 0x05
)

// Payments on streams (docs/protocol.md §3, "Payments").
const (
	// HeaderVoucher is the request field carrying the session's voucher
	// (standard base64 of its binary encoding). A request with it keeps
	// its send side open after the head and sends ReceiptBytes-long
	// receipts until FIN.
	HeaderVoucher = "verity-voucher"
	// HeaderPaymentError is the field of a 402 response naming why the
	// voucher was refused: a payment.Code or PaymentRequired.
	HeaderPaymentError = "verity-payment-error"
	// HeaderCredit is the field of a paid request's 2xx response head
	// giving the node's credit window in bytes (decimal): how far its body
	// may run ahead of the receipts. A client may sign less often against
	// a larger window; without the field it assumes the smallest,
	// MinCreditWindow.
	HeaderCredit = "verity-credit"
	// HeaderReceiptOrder is the field of a paid request's 2xx response
	// head with which a node says it takes the session's receipts in any
	// order across its streams (ReceiptOrderAny): a valid receipt that one
	// it already accepted supersedes is ignored, not refused. A client
	// opens several paid streams to one node at once only to a node that
	// said so; an older node resets a stream whose receipt arrives after
	// a newer one sent on another.
	HeaderReceiptOrder = "verity-receipt-order"
	// ReceiptOrderAny is HeaderReceiptOrder's value.
	ReceiptOrderAny = "any"
	// MinCreditWindow is the smallest credit window a node uses: two
	// 256 KiB blocks.
	MinCreditWindow = 512 << 10
	// PaymentRequired: the node serves paid requests only and the request
	// carried no voucher.
	PaymentRequired = "payment_required"
)

// WriteTo writes the request head. It validates the head first and writes
// nothing if it is invalid.
func (r *Request) WriteTo(w io.Writer) (int64, error) {
	const op = "write request"
	method := r.Method
	if method == "" {
		method = "GET"
	}
	if method != "GET" {
		return 0, &HeadError{Op: op, Detail: "method " + strconv.Quote(method), Err: ErrMalformed}
	}
	if err := checkTarget(r.Target); err != nil {
		return 0, &HeadError{Op: op, Detail: "target", Err: err}
	}
	return writeHead(w, op, "request line", method+" "+r.Target, r.Header)
}

// writeHead writes "VERITY/1 <first>\r\n", the header and the blank line,
// all or nothing: an invalid head writes no byte.
func writeHead(w io.Writer, op, lineName, first string, h Header) (int64, error) {
	var b strings.Builder
	b.WriteString(Proto)
	b.WriteString(" ")
	b.WriteString(first)
	b.WriteString("\r\n")
	if b.Len() > MaxLineBytes {
		return 0, &HeadError{Op: op, Detail: lineName, Err: ErrTooLarge}
	}
	if err := writeHeader(&b, h); err != nil {
		return 0, &HeadError{Op: op, Detail: "header", Err: err}
	}
	if b.Len() > MaxHeadBytes {
		return 0, &HeadError{Op: op, Detail: "head", Err: ErrTooLarge}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ReadRequest reads one request head from br. It reads exactly the head and
// nothing past it. A stream that ends before the first byte gives io.EOF.
func ReadRequest(br *bufio.Reader) (*Request, error) {
	const op = "read request"
	lr := &limitedReader{br: br, left: MaxHeadBytes}
	rest, err := lr.readFirstLine(op, "request line")
	if err != nil {
		return nil, err
	}
	method, target, ok := strings.Cut(rest, " ")
	if !ok || method != "GET" {
		return nil, &HeadError{Op: op, Detail: "method", Err: ErrMalformed}
	}
	if err := checkTarget(target); err != nil {
		return nil, &HeadError{Op: op, Detail: "target", Err: err}
	}
	h, err := lr.readHeader()
	if err != nil {
		return nil, headErr(op, "header", err)
	}
	return &Request{Method: method, Target: target, Header: h}, nil
}

// WriteTo writes the response head. An empty Reason is replaced by the
// standard one for the status.
func (r *Response) WriteTo(w io.Writer) (int64, error) {
	const op = "write response"
	if r.Status < 100 || r.Status > 999 {
		return 0, &HeadError{Op: op, Detail: "status " + strconv.Itoa(r.Status), Err: ErrMalformed}
	}
	reason := r.Reason
	if reason == "" {
		reason = StatusText(r.Status)
	}
	if !validText(reason) {
		return 0, &HeadError{Op: op, Detail: "reason", Err: ErrMalformed}
	}
	return writeHead(w, op, "status line", strconv.Itoa(r.Status)+" "+reason, r.Header)
}

// ReadResponse reads one response head from br; the body follows in br. It
// reads exactly the head and nothing past it.
func ReadResponse(br *bufio.Reader) (*Response, error) {
	const op = "read response"
	lr := &limitedReader{br: br, left: MaxHeadBytes}
	rest, err := lr.readFirstLine(op, "status line")
	if err != nil {
		return nil, err
	}
	code, reason, _ := strings.Cut(rest, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '9' || !isDigits(code) {
		return nil, &HeadError{Op: op, Detail: "status code", Err: ErrMalformed}
	}
	status, _ := strconv.Atoi(code)
	if !validText(reason) {
		return nil, &HeadError{Op: op, Detail: "reason", Err: ErrMalformed}
	}
	h, err := lr.readHeader()
	if err != nil {
		return nil, headErr(op, "header", err)
	}
	return &Response{Status: status, Reason: reason, Header: h}, nil
}

// OK reports whether the status is 2xx.
func (r *Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// ReadErrorMessage reads the body of a non-2xx response: at most
// MaxErrorBody bytes of text. Bytes past the limit are not read; each
// byte of invalid UTF-8 becomes U+FFFD (rune by rune, with the runtime's
// own decoding: strings.ToValidUTF8 would add 1.5 KB to the worker's
// wasm).
func ReadErrorMessage(body io.Reader) (string, error) {
	buf, err := io.ReadAll(io.LimitReader(body, MaxErrorBody))
	out := make([]byte, 0, len(buf))
	for _, r := range string(buf) {
		out = append(out, string(r)...)
	}
	return string(out), err
}

// Err reads the error message from body and returns a *StatusError, or nil
// if the response is 2xx (body is then left untouched).
func (r *Response) Err(body io.Reader) error {
	if r.OK() {
		return nil
	}
	msg, _ := ReadErrorMessage(body)
	return &StatusError{Status: r.Status, Message: strings.TrimSpace(msg), PaymentCode: r.Header.Get(HeaderPaymentError)}
}

// StatusText returns the reason phrase of the statuses nodes send and the
// worker answers with (net/http's, but RFC 9110's for 416, without linking
// net/http), and "Status <code>" for others.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 410:
		return "Gone"
	case 412:
		return "Precondition Failed"
	case 416:
		return "Range Not Satisfiable"
	case 429:
		return "Too Many Requests"
	case 402:
		return "Payment Required"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "Status " + strconv.Itoa(code)
}

func headErr(op, detail string, err error) error {
	if err == io.EOF && detail != "header" {
		return io.EOF // nothing read: a clean end of stream
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &HeadError{Op: op, Detail: detail, Err: err}
}

// limitedReader reads CRLF-terminated lines from br, counting every byte
// against the head budget.
type limitedReader struct {
	br   *bufio.Reader
	left int // bytes of head still allowed
	read int // bytes read so far
}

// readLine returns one line without its CRLF. It reads at most
// min(MaxLineBytes, left) bytes. A stream ending before any byte is io.EOF;
// ending inside the line is io.ErrUnexpectedEOF.
func (l *limitedReader) readLine() (string, error) {
	max := MaxLineBytes
	if l.left < max {
		max = l.left
	}
	var sb strings.Builder
	for {
		if sb.Len() >= max {
			return "", ErrTooLarge
		}
		// Peek what is buffered without reading past the limit.
		n := l.br.Buffered()
		if n == 0 {
			if _, err := l.br.Peek(1); err != nil {
				if err == io.EOF && (sb.Len() > 0 || l.read > 0) {
					return "", io.ErrUnexpectedEOF
				}
				return "", err
			}
			n = l.br.Buffered()
		}
		if n > max-sb.Len() {
			n = max - sb.Len()
		}
		chunk, _ := l.br.Peek(n)
		i := strings.IndexByte(string(chunk), '\n')
		if i >= 0 {
			chunk = chunk[:i+1]
		}
		sb.Write(chunk)
		_, _ = l.br.Discard(len(chunk))
		l.read += len(chunk)
		l.left -= len(chunk)
		if i >= 0 {
			s := sb.String()
			if len(s) < 2 || s[len(s)-2] != '\r' {
				return "", ErrMalformed // bare LF
			}
			return s[:len(s)-2], nil
		}
	}
}

func (l *limitedReader) readHeader() (Header, error) {
	h := Header{}
	for {
		line, err := l.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		if len(h) >= MaxHeaderFields {
			return nil, ErrTooLarge
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validName(name) {
			return nil, ErrMalformed
		}
		value = strings.Trim(value, " \t")
		if !validText(value) {
			return nil, ErrMalformed
		}
		name = strings.ToLower(name)
		if _, dup := h[name]; dup {
			return nil, ErrMalformed
		}
		h[name] = value
	}
}

func writeHeader(b *strings.Builder, h Header) error {
	if len(h) > MaxHeaderFields {
		return ErrTooLarge
	}
	// Sorted for deterministic output.
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sortStrings(names)
	seen := make(map[string]bool, len(names))
	for _, k := range names {
		v := h[k]
		lk := strings.ToLower(k)
		if !validName(k) || seen[lk] {
			return ErrMalformed
		}
		seen[lk] = true
		v = strings.Trim(v, " \t")
		if !validText(v) {
			return ErrMalformed
		}
		line := len(lk) + 2 + len(v) + 2
		if line > MaxLineBytes {
			return ErrTooLarge
		}
		b.WriteString(lk)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// checkTarget: starts with "/", no spaces, no control characters.
func checkTarget(t string) error {
	if t == "" || t[0] != '/' {
		return ErrMalformed
	}
	if len(t) > MaxLineBytes {
		return ErrTooLarge
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return ErrMalformed
		}
	}
	return nil
}

// validName: an HTTP token (RFC 9110 tchar).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validText: no control characters other than horizontal tab.
func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// readFirstLine reads the head's first line and checks its protocol token;
// it returns what follows the token.
func (lr *limitedReader) readFirstLine(op, lineName string) (string, error) {
	line, err := lr.readLine()
	if err != nil {
		return "", headErr(op, lineName, err)
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok {
		return "", &HeadError{Op: op, Detail: lineName, Err: ErrMalformed}
	}
	if proto != Proto {
		if strings.HasPrefix(proto, "VERITY/") {
			return "", &HeadError{Op: op, Detail: strconv.Quote(proto), Err: ErrVersion}
		}
		return "", &HeadError{Op: op, Detail: "protocol token", Err: ErrMalformed}
	}
	return rest, nil
}
