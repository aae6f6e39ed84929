// ipfs-unixfs-importer has no hasher option: utils/persist.js imports sha256
// from multiformats/hashes/sha2. Point that one import at blake3-hasher.mjs.
export async function resolve (specifier, context, next) {
  if (specifier === 'multiformats/hashes/sha2' &&
      context.parentURL?.endsWith('/ipfs-unixfs-importer/dist/src/utils/persist.js')) {
    return { url: new URL('./blake3-hasher.mjs', import.meta.url).href, shortCircuit: true }
  }
  return next(specifier, context)
}
