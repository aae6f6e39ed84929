package s3api

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS Signature Version 4, checked by recomputing the signature with the
// AWS SDK for Go's signer (aws/signer/v4) over the request as the client
// signed it (its method, path as sent, query, the headers it named in
// SignedHeaders and the payload hash it declared) under the key's
// secret, and comparing the two in constant time. The SDK's signer is
// what the SDK's own S3 client signs with, so the canonical request is
// built by the code every Go client trusts rather than by ours.

const (
	algorithm         = "AWS4-HMAC-SHA256"
	amzDateFormat     = "20060102T150405Z"
	unsignedPayload   = "UNSIGNED-PAYLOAD"
	streamingPayload  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingUnsigned = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	maxPresignExpiry  = 7 * 24 * time.Hour
)

// identity is who signed a request and what it declared of its payload.
type identity struct {
	KeyID   string
	Account string
	// Payload is the x-amz-content-sha256 the signature covers: a hex
	// SHA-256 of the body, UNSIGNED-PAYLOAD, or a streaming form.
	Payload string
	// Stream checks the chunks of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	// body; nil otherwise.
	Stream *streamAuth
}

// credential is the parsed "Credential=" (or X-Amz-Credential) value.
type credential struct {
	keyID, date, region, service string
}

func parseCredential(v string) (credential, bool) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || len(parts[1]) != 8 {
		return credential{}, false
	}
	return credential{keyID: parts[0], date: parts[1], region: parts[2], service: parts[3]}, true
}

// authenticate checks r's signature, in the Authorization header or in a
// presigned URL's query, and returns who signed it.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (identity, error) {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, algorithm+" "):
		return s.authHeader(ctx, r, auth)
	case q.Get("X-Amz-Algorithm") != "":
		return s.authQuery(ctx, r, q)
	case auth != "" || q.Get("AWSAccessKeyId") != "":
		return identity{}, ErrAccessDenied.with("Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported.")
	}
	return identity{}, ErrAccessDenied.with("Anonymous access is not allowed: sign the request with an access key (verity keys create).")
}

// authHeader checks the header form:
// Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
func (s *Server) authHeader(ctx context.Context, r *http.Request, auth string) (identity, error) {
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return identity{}, ErrAuthorizationMalformed
		}
		fields[k] = v
	}
	cred, ok := parseCredential(fields["Credential"])
	signed, sig := fields["SignedHeaders"], fields["Signature"]
	if !ok || signed == "" || sig == "" {
		return identity{}, ErrAuthorizationMalformed
	}
	if cred.service != "s3" {
		return identity{}, ErrAuthorizationMalformed.with("The credential names service %q; this is s3.", cred.service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil || t.Format("20060102") != cred.date {
		return identity{}, ErrAccessDenied.with("AWS authentication requires a valid X-Amz-Date header matching the credential's date.")
	}
	if skew := s.cfg.Now().Sub(t); skew > s.cfg.MaxClockSkew || -skew > s.cfg.MaxClockSkew {
		return identity{}, ErrRequestTimeTooSkewed
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return identity{}, ErrInvalidArgument.with("Missing required header for this request: x-amz-content-sha256")
	}
	if !validPayloadHash(payload) {
		return identity{}, ErrInvalidArgument.with("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the payload")
	}
	account, secretKey, err := s.lookupKey(ctx, cred.keyID)
	if err != nil {
		return identity{}, err
	}
	names := strings.Split(signed, ";")
	if !hasAll(names, "host", "x-amz-date") {
		return identity{}, ErrAuthorizationMalformed.with("SignedHeaders must include host and x-amz-date.")
	}
	if err := checkAmzHeadersSigned(r, names); err != nil {
		return identity{}, err
	}
	for _, p := range candidatePaths(r) {
		req, err := s.signable(r, p, r.URL.RawQuery, names)
		if err != nil {
			return identity{}, err
		}
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: cred.keyID, SecretAccessKey: secretKey}
		if err := signer.SignHTTP(ctx, creds, req, payload, "s3", cred.region, t); err != nil {
			return identity{}, ErrInternal
		}
		_, want := authSignature(req.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1 {
			who := identity{KeyID: cred.keyID, Account: account, Payload: payload}
			if payload == streamingPayload || payload == streamingTrailer {
				seed, _ := hex.DecodeString(sig)
				who.Stream = &streamAuth{creds: creds, region: cred.region, time: t, seed: seed, trailer: payload == streamingTrailer}
			}
			return who, nil
		}
	}
	return identity{}, ErrSignatureDoesNotMatch
}

// authQuery checks a presigned URL: X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature.
func (s *Server) authQuery(ctx context.Context, r *http.Request, q url.Values) (identity, error) {
	if q.Get("X-Amz-Algorithm") != algorithm {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Algorithm only supports %q", algorithm)
	}
	cred, ok := parseCredential(q.Get("X-Amz-Credential"))
	if !ok || cred.service != "s3" {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Credential is malformed")
	}
	t, err := time.Parse(amzDateFormat, q.Get("X-Amz-Date"))
	if err != nil || t.Format("20060102") != cred.date {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Date must be valid and match the credential's date")
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignExpiry {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Expires must be a number of seconds from 1 to 604800")
	}
	now := s.cfg.Now()
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return identity{}, ErrExpiredPresign
	}
	if t.Sub(now) > s.cfg.MaxClockSkew {
		return identity{}, ErrRequestTimeTooSkewed
	}
	sig, signed := q.Get("X-Amz-Signature"), q.Get("X-Amz-SignedHeaders")
	if sig == "" || signed == "" {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Signature and X-Amz-SignedHeaders are required")
	}
	payload := q.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = unsignedPayload
	}
	if !validPayloadHash(payload) {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-Content-Sha256 is malformed")
	}
	if payload == streamingPayload || payload == streamingTrailer {
		// Its chunks' signatures chain from the request's and need the
		// secret key, which whoever holds the URL does not have: they
		// could not be checked, and the body would not be bound.
		return identity{}, ErrAuthorizationQuery.with("A presigned URL cannot sign an aws-chunked body's chunks: use UNSIGNED-PAYLOAD, the body's SHA-256, or STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	}
	account, secretKey, err := s.lookupKey(ctx, cred.keyID)
	if err != nil {
		return identity{}, err
	}
	names := strings.Split(signed, ";")
	if !hasAll(names, "host") {
		return identity{}, ErrAuthorizationQuery.with("X-Amz-SignedHeaders must include host")
	}
	if err := checkAmzHeadersSigned(r, names); err != nil {
		return identity{}, err
	}
	// The query as signed: everything but the signature, in any order
	// (the signer sorts it).
	rest := url.Values{}
	for k, v := range q {
		if k != "X-Amz-Signature" {
			rest[k] = v
		}
	}
	for _, p := range candidatePaths(r) {
		req, err := s.signable(r, p, rest.Encode(), names)
		if err != nil {
			return identity{}, err
		}
		signer := v4.NewSigner(func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = true
			o.DisableHeaderHoisting = true
		})
		creds := aws.Credentials{AccessKeyID: cred.keyID, SecretAccessKey: secretKey}
		uri, _, err := signer.PresignHTTP(ctx, creds, req, payload, "s3", cred.region, t)
		if err != nil {
			return identity{}, ErrInternal
		}
		u, err := url.Parse(uri)
		if err != nil {
			return identity{}, ErrInternal
		}
		if subtle.ConstantTimeCompare([]byte(u.Query().Get("X-Amz-Signature")), []byte(sig)) == 1 {
			return identity{KeyID: cred.keyID, Account: account, Payload: payload}, nil
		}
	}
	return identity{}, ErrSignatureDoesNotMatch
}

// lookupKey returns an access key's account and secret, or
// InvalidAccessKeyId.
func (s *Server) lookupKey(ctx context.Context, id string) (account, secretKey string, err error) {
	account, secretKey, ok, err := s.cfg.Keys.S3AccessKey(ctx, id)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", ErrInvalidAccessKeyID
	}
	return account, secretKey, nil
}

// signable is the request as the client signed it: r's method, host,
// the path p, the query, and only the headers named in signed.
func (s *Server) signable(r *http.Request, p, rawQuery string, signed []string) (*http.Request, error) {
	req := &http.Request{
		Method: r.Method,
		Host:   r.Host,
		URL:    &url.URL{Scheme: "http", Host: r.Host, Opaque: "//" + r.Host + p, RawQuery: rawQuery},
		Header: http.Header{},
	}
	for _, name := range signed {
		switch name {
		case "host":
		case "content-length":
			n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
			if err != nil && r.ContentLength >= 0 {
				n = r.ContentLength
			}
			req.ContentLength = n
		case "authorization", "user-agent", "x-amzn-trace-id", "expect", "transfer-encoding":
			// The SDK's signer never signs these (its IgnoredHeaders), so
			// a signature over them cannot be checked by it.
			return nil, ErrAuthorizationMalformed.with("SignedHeaders names %q, which this server does not accept in a signature.", name)
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return nil, ErrAuthorizationMalformed.with("SignedHeaders names %q, which the request does not carry.", name)
			}
			req.Header[http.CanonicalHeaderKey(name)] = vals
		}
	}
	return req, nil
}

// candidatePaths are the canonical URIs a client may have signed: the
// path as sent, and the path encoded as the SigV4 specification says
// (every byte but A-Z a-z 0-9 - . _ ~ and / percent-encoded), when they
// differ.
func candidatePaths(r *http.Request) []string {
	sent := r.URL.EscapedPath()
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 {
		sent = r.RequestURI[:i]
	} else if strings.HasPrefix(r.RequestURI, "/") {
		sent = r.RequestURI
	}
	spec := awsEscapePath(r.URL.Path)
	if spec == sent {
		return []string{sent}
	}
	return []string{sent, spec}
}

// awsEscapePath percent-encodes p as SigV4's canonical URI does for S3.
func awsEscapePath(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// authSignature returns the SignedHeaders and Signature of an
// Authorization header the signer wrote.
func authSignature(auth string) (signed, sig string) {
	for _, f := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	return signed, sig
}

// checkAmzHeadersSigned refuses a request carrying an x-amz-* header its
// signature does not cover, as S3 does: such a header changes what the
// request does (x-amz-copy-source turns a PUT into a copy) and could
// otherwise be added by whoever holds a presigned URL or replays a
// request. x-amz-content-sha256 is exempt: in the header form its value
// is the payload hash the signature covers.
func checkAmzHeadersSigned(r *http.Request, signed []string) error {
	for name := range r.Header {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") || lower == "x-amz-content-sha256" {
			continue
		}
		if !hasAll(signed, lower) {
			return ErrAccessDenied.with("There were headers present in the request which were not signed: %s", clip(lower))
		}
	}
	return nil
}

func hasAll(names []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, n := range names {
			if n == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validPayloadHash reports whether v is a payload declaration this server
// reads: UNSIGNED-PAYLOAD, 64 lowercase hex digits, or a streaming form
// (the signed one with a trailer is refused with NotImplemented where the
// body is read).
func validPayloadHash(v string) bool {
	switch v {
	case unsignedPayload, streamingPayload, streamingUnsigned, streamingTrailer:
		return true
	}
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
