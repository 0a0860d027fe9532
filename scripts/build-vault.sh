#!/usr/bin/env bash
# Builds HashiCorp Vault VERSION from its Go module into OUT, for the
# end-to-end tests only (`make test-vault`); nothing of Vault is committed.
#
#   scripts/build-vault.sh VERSION OUT
#
# The module cache and build cache are whatever GOMODCACHE and GOCACHE say
# (the Makefile points them into .tools/). `go install ...vault@VERSION`
# cannot work: the release's go.mod replaces its api/ and sdk/ modules with
# its own sub-folders, which a module zip leaves out. So the module is
# copied to a writable folder and those replaces are dropped: api and sdk
# then come as the released versions the release's go.mod requires. That
# only builds where those releases match the code of the Vault release
# (see VAULT_VERSION in the Makefile).
set -euo pipefail

version=$1 out=$2
module=github.com/hashicorp/vault

dir=$(go mod download -json "$module@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "go mod download gave no directory for $module@v$version" >&2; exit 1; }

src=$(dirname "$out")/../vault-src
rm -rf "$src"
mkdir -p "$(dirname "$src")"
cp -r "$dir" "$src"
chmod -R u+w "$src"
cd "$src"
go mod edit \
    -dropreplace=$module/api \
    -dropreplace=$module/api/auth/approle \
    -dropreplace=$module/api/auth/kubernetes \
    -dropreplace=$module/api/auth/userpass \
    -dropreplace=$module/sdk
# No cgo: what HashiCorp's release builds use, and faster to build.
CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$out.tmp" .
mv "$out.tmp" "$out"
cd - >/dev/null
rm -rf "$src"
"$out" version | grep -q "^Vault v$version[ ,]" || { "$out" version >&2; exit 1; }
