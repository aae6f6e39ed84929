// Package siteclient is a client of a gateway's HTTP API (package control
// serves it: /v1/sites..., /v1/accounts..., /v1/events), used by `verity
// deploy`, `verity sites`, `verity accounts`, `verity events` and `verity
// node earnings`. It decodes the documents of internal/api and links no
// server package.
//
// Usage:
//
//	c := siteclient.New(siteclient.Config{Gateway: "http://127.0.0.1:8080", Token: tok})
//	rec, err := c.Deploy(ctx, "blog", carFile, size, progress)
//	st, err := c.WaitPublished(ctx, "blog", rec.Root, time.Second/4)
//
// Errors from the gateway are *APIError values carrying the HTTP status,
// the message and, for refused CARs, the carcheck code and the block's CID
// (an api.Error body).
package siteclient
