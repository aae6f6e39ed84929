// Exported under the name the JS importer imports (sha256), so that the
// importer's hard-coded hasher in utils/persist.js becomes BLAKE3 (0x1e).
import { from } from 'multiformats/hashes/hasher'
import { blake3 } from '@noble/hashes/blake3.js'
export const sha256 = from({ name: 'blake3', code: 0x1e, encode: (b) => blake3(b) })
