// Package s3api is Verity's S3-compatible API: buckets whose objects are
// stored as UnixFS on the network's nodes, each bucket with a content
// root (its tree of keys as a UnixFS directory), served on a port of its
// own for the S3 tools people already use (the AWS CLI, rclone, s3cmd,
// the AWS and MinIO SDKs).
//
// What it does per request:
//
//   - authentication (auth.go, chunked.go): AWS Signature V4 in the
//     Authorization header or a presigned URL's query, checked by
//     recomputing the signature with the AWS SDK for Go's signer
//     (aws/signer/v4) over the request as signed, compared in constant
//     time; streaming payloads (aws-chunked) with each chunk's signature
//     computed by the SDK's stream signer, or a trailing checksum. Keys
//     come from a KeySource (control.Control: sealed in the s3_keys
//     bucket).
//   - buckets (buckets.go, index.go, treeinc.go): one record per bucket
//     in the bus's s3_buckets bucket (owner, current root, the last
//     MaxHistory roots, the shards of its key index, each in s3_index and
//     written once), changed only by compare-and-set, so the changes to a
//     bucket are ordered by the bus: last writer wins per key. A change
//     writes one shard and rebuilds only the directories on its key's
//     path.
//   - objects (objects.go, multipart.go, read.go, tree.go): a PUT (or a
//     completed multipart upload) is staged, checked (declared SHA-256,
//     Content-MD5, length), imported with internal/importer's settings,
//     and handed to a ContentStore (control.Control: the deploy path's
//     verification, content store and placement); it is recorded, and a
//     new bucket root computed, only once the configured number of live
//     nodes hold it. GETs read the object's CAR (fetched from a holder
//     when this gateway has none) with one Range.
//   - billing (billing.go, meter.go): the bytes each account's buckets
//     hold, over time, charged to the ledger once per interval whatever
//     the number of gateways; the bytes GETs serve, charged to the
//     bucket's account in batches every MeterInterval; a frozen account
//     may not add content, nor have its objects served.
//
// Usage, as `verity gateway --s3-listen` composes it:
//
//	ln, err := net.Listen("tcp", "127.0.0.1:9000")
//	srv, err := s3api.New(s3api.Config{
//		Listener: ln, Keys: ctl, Store: ctl, Bus: bus, DataDir: dir,
//		Charges: coord.Ledger(), Accounts: coord.Ledger(),
//	})
//	go srv.Run(ctx)
//	defer srv.Close()
//
// Config: Listener, Keys, Store, Bus and DataDir are required
// (ErrConfig); Domain (virtual-hosted-style BUCKET.<Domain>) is off,
// Region "us-east-1", MaxObjectBytes 5 GiB, MaxMultipartBytes 5 TiB, StoreTimeout 2 min,
// MaxClockSkew 15 min, StoragePrice 1 GiB per GiB-month, StorageInterval
// 1 h, MaxUploads 1,000 open per account, UploadExpiry 24 h without a
// part, MeterInterval 10 s, MeterName "s3-served/<bus name>"; Charges and
// Accounts are optional.
//
// Errors are S3's XML error documents with S3's codes (errors.go: an
// *Error per code, its HTTP status and message); X-Verity-Root and
// X-Verity-Cid name the bucket's root and the object's CID.
//
// Specs: the Amazon S3 API reference (operations, XML shapes, error
// codes), AWS Signature Version 4 (header, query and streaming forms);
// docs/storage.md says which operations are supported.
package s3api
