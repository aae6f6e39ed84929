package control

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SignWebhook is the Verity-Signature of a delivery: "v1=" and the hex
// HMAC-SHA256, keyed by the endpoint's secret, of the Verity-Timestamp
// value, a ".", and the body.
func SignWebhook(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}
