// node --import ./register.mjs import.mjs PATH prints the root CID of PATH
// imported with Verity's settings.
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core'

const options = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
  wrapWithDirectory: false
}

function * entries (abs, rel) {
  const st = fs.lstatSync(abs)
  if (st.isDirectory()) {
    yield { path: rel }
    for (const name of fs.readdirSync(abs).sort()) {
      yield * entries(path.join(abs, name), rel + '/' + name)
    }
  } else if (st.isFile()) {
    yield { path: rel, content: fs.readFileSync(abs) }
  } else {
    throw new Error('not a file or directory: ' + abs)
  }
}

const p = path.resolve(process.argv[2])
let last
for await (const e of importer(entries(p, path.basename(p)), new MemoryBlockstore(), options)) {
  last = e
}
console.log(last.cid.toString())
