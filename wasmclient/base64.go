package wasmclient

// decodeBase64 decodes s, standard or URL-safe base64 (RFC 4648 §4, §5),
// padded or not, as encoding/base64's StdEncoding or RawURLEncoding
// would: the worker's only base64 (certificate hashes, the voucher), in a
// few lines instead of that package (about 3 KB of the gzipped wasm).
// Whitespace, misplaced padding and a lone last character are refused.
func decodeBase64(s string) ([]byte, bool) {
	if n := len(s); n%4 == 0 && n > 0 && s[n-1] == '=' {
		s = s[:n-1]
		if s[n-2] == '=' {
			s = s[:n-2]
		}
	}
	if len(s)%4 == 1 {
		return nil, false
	}
	out := make([]byte, 0, len(s)*3/4)
	var acc uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '+' || c == '-':
			v = 62
		case c == '/' || c == '_':
			v = 63
		default:
			return nil, false
		}
		acc = acc<<6 | uint32(v)
		if i%4 == 3 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc = 0
		}
	}
	switch len(s) % 4 {
	case 2:
		out = append(out, byte(acc>>4))
	case 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	return out, true
}
