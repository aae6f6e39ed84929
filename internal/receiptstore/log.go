package receiptstore

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/verity-cdn/verity/internal/payment"
)

// Log records: length(4) crc32c(4) type(1) payload, where length counts
// type and payload and the CRC-32C covers them.
const (
	recVoucher = 'V' // payload: a voucher's canonical encoding
	recReceipt = 'R' // payload: a receipt's canonical encoding
	recSettled = 'S' // payload: session(32) settled bytes(8)

	headerBytes = 8
	maxRecord   = 1 + payment.MaxVoucherBytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(b []byte, typ byte, payload []byte) []byte {
	n := 1 + len(payload)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	crc := crc32.Update(crc32.Checksum([]byte{typ}, castagnoli), castagnoli, payload)
	b = binary.BigEndian.AppendUint32(b, crc)
	b = append(b, typ)
	return append(b, payload...)
}

// nextRecord parses the record at the start of b. ok is false for a
// truncated or damaged record.
func nextRecord(b []byte) (typ byte, payload []byte, size int, ok bool) {
	if len(b) < headerBytes+1 {
		return 0, nil, 0, false
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < 1 || n > maxRecord || len(b) < headerBytes+n {
		return 0, nil, 0, false
	}
	body := b[headerBytes : headerBytes+n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return 0, nil, 0, false
	}
	return body[0], body[1:], headerBytes + n, true
}
