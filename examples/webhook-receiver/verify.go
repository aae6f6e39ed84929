package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// verify checks a Verity webhook delivery: the signature over the
// timestamp and the body, and a timestamp within five minutes of now
// (an older delivery replayed by someone who recorded it is refused).
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	ts := h.Get("Verity-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp too far from now")
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(h.Get("Verity-Signature"))) {
		return errors.New("bad signature")
	}
	return nil
}
