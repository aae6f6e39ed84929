#!/usr/bin/env bash
# Prints "NAME VERITY KUBO JS" for every interop input. Everything it builds
# or installs goes to a temporary directory, removed at the end; nothing is
# written to the repository. Needs go, node >= 20.6 and npm. See README.md.
set -euo pipefail

KUBO_VERSION=${KUBO_VERSION:-v0.43.0}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

# Kubo, built from its released module with its own go.mod and go.sum.
src=$(cd "$tmp" && GOFLAGS=-modcacherw go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" |
	sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$src" "$tmp/kubo" && chmod -R u+w "$tmp/kubo"
(cd "$tmp/kubo" && go build -o "$tmp/bin/ipfs" ./cmd/ipfs)
export IPFS_PATH=$tmp/ipfsrepo
"$tmp/bin/ipfs" init --profile=test >/dev/null

# The JS importer, at the versions pinned in js/package.json.
cp -r "$here/js" "$tmp/js"
(cd "$tmp/js" && npm install --no-audit --no-fund --silent)

# Verity.
(cd "$repo" && go build -o "$tmp/bin/verity" ./cmd/verity)
(cd "$repo" && VERITY_INTEROP_OUT="$tmp/in" go test -count=1 -run '^TestWriteInteropInputs$' ./internal/importer/ >/dev/null)

cd "$tmp/in"
for name in *; do
	verity=$("$tmp/bin/verity" import "$name" 2>/dev/null)
	kubo=$("$tmp/bin/ipfs" --offline add -r -Q --hidden --only-hash \
		--cid-version=1 --raw-leaves --hash=blake3 --chunker=size-262144 "$name")
	js=$(node --import "$tmp/js/register.mjs" "$tmp/js/import.mjs" "$name")
	echo "$name $verity $kubo $js"
done
