package s3api

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Error is an S3 error: the code S3 gives it, its HTTP status and a
// message. It is answered as S3's XML error document.
type Error struct {
	Code    string
	Status  int
	Message string
	// Resource is the bucket or object the request named.
	Resource string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The S3 errors this API answers (the codes are S3's, in
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
var (
	ErrAccessDenied            = &Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied"}
	ErrInvalidAccessKeyID      = &Error{Code: "InvalidAccessKeyId", Status: http.StatusForbidden, Message: "The AWS Access Key Id you provided does not exist in our records."}
	ErrSignatureDoesNotMatch   = &Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden, Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	ErrRequestTimeTooSkewed    = &Error{Code: "RequestTimeTooSkewed", Status: http.StatusForbidden, Message: "The difference between the request time and the server's time is too large."}
	ErrExpiredPresign          = &Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Request has expired"}
	ErrAuthorizationMalformed  = &Error{Code: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest, Message: "The authorization header is malformed."}
	ErrAuthorizationQuery      = &Error{Code: "AuthorizationQueryParametersError", Status: http.StatusBadRequest, Message: "The presigned URL's query parameters are malformed."}
	ErrSHA256Mismatch          = &Error{Code: "XAmzContentSHA256Mismatch", Status: http.StatusBadRequest, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	ErrBadDigest               = &Error{Code: "BadDigest", Status: http.StatusBadRequest, Message: "The Content-MD5 you specified did not match what we received."}
	ErrInvalidDigest           = &Error{Code: "InvalidDigest", Status: http.StatusBadRequest, Message: "The Content-MD5 you specified is not valid."}
	ErrNoSuchBucket            = &Error{Code: "NoSuchBucket", Status: http.StatusNotFound, Message: "The specified bucket does not exist"}
	ErrNoSuchKey               = &Error{Code: "NoSuchKey", Status: http.StatusNotFound, Message: "The specified key does not exist."}
	ErrBucketNotEmpty          = &Error{Code: "BucketNotEmpty", Status: http.StatusConflict, Message: "The bucket you tried to delete is not empty"}
	ErrBucketAlreadyExists     = &Error{Code: "BucketAlreadyExists", Status: http.StatusConflict, Message: "The requested bucket name is not available."}
	ErrBucketAlreadyOwnedByYou = &Error{Code: "BucketAlreadyOwnedByYou", Status: http.StatusConflict, Message: "Your previous request to create the named bucket succeeded and you already own it."}
	ErrInvalidBucketName       = &Error{Code: "InvalidBucketName", Status: http.StatusBadRequest, Message: "The specified bucket is not valid."}
	ErrInvalidRange            = &Error{Code: "InvalidRange", Status: http.StatusRequestedRangeNotSatisfiable, Message: "The requested range is not satisfiable"}
	ErrMalformedXML            = &Error{Code: "MalformedXML", Status: http.StatusBadRequest, Message: "The XML you provided was not well-formed or did not validate against our published schema."}
	ErrInvalidArgument         = &Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "Invalid Argument"}
	ErrKeyTooLong              = &Error{Code: "KeyTooLongError", Status: http.StatusBadRequest, Message: "Your key is too long"}
	ErrEntityTooLarge          = &Error{Code: "EntityTooLarge", Status: http.StatusBadRequest, Message: "Your proposed upload exceeds the maximum allowed object size."}
	ErrIncompleteBody          = &Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	ErrMissingContentLength    = &Error{Code: "MissingContentLength", Status: http.StatusLengthRequired, Message: "You must provide the Content-Length HTTP header."}
	ErrMethodNotAllowed        = &Error{Code: "MethodNotAllowed", Status: http.StatusMethodNotAllowed, Message: "The specified method is not allowed against this resource."}
	ErrNotImplemented          = &Error{Code: "NotImplemented", Status: http.StatusNotImplemented, Message: "A header or query you provided implies functionality that is not implemented."}
	ErrServiceUnavailable      = &Error{Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable, Message: "Not enough storage nodes acknowledged the object in time; it was not stored. Please retry."}
	ErrInternal                = &Error{Code: "InternalError", Status: http.StatusInternalServerError, Message: "We encountered an internal error. Please try again."}
)

// with returns a copy of e with another message.
func (e *Error) with(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// errorDoc is S3's error document.
type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// s3Error returns the *Error err is, or wraps; any other error is an
// InternalError.
func s3Error(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal
}

// drainBytes bounds what writeError reads of a refused request's body.
const drainBytes = 16 << 20

// writeError answers err as S3's XML error document (a HEAD answer has
// no body).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := s3Error(err)
	if e == ErrInternal {
		s.log.Warn("s3 request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("s3 request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "msg", e.Message)
	}
	// A body refused before it was read (a part too large, a bad
	// signature) is read to its end first when it is small enough, so a
	// client still sending it gets this answer rather than a connection
	// reset; a larger one is cut off with the connection.
	if r.Body != nil && r.ContentLength >= 0 && r.ContentLength <= drainBytes {
		_, _ = io.CopyN(io.Discard, r.Body, drainBytes)
	}
	// A GET that fails once its object's headers are set (its CAR could
	// not be opened) must not announce the object's length over the
	// error document.
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", requestID(r))
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	res := e.Resource
	if res == "" {
		res = r.URL.Path
	}
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorDoc{Code: e.Code, Message: e.Message, Resource: res, RequestID: requestID(r)})
}
