// Package siteclient is a client of a gateway's site API (gateway package,
// /v1/sites...), used by `verity deploy` and `verity sites`.
//
// Usage:
//
//	c := siteclient.New(siteclient.Config{Gateway: "http://127.0.0.1:8080", Token: tok})
//	rec, err := c.Deploy(ctx, "blog", carFile, size, progress)
//	st, err := c.WaitPublished(ctx, "blog", rec.Root, time.Second/4)
//
// Errors from the gateway are *APIError values carrying the HTTP status,
// the message and, for refused CARs, the carcheck code and the block's CID.
package siteclient
