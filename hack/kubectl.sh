#!/usr/bin/env bash
# Builds kubectl from the k8s.io/kubectl module at the version pinned in
# hack/kubectl/go.mod, into a cache folder keyed by a hash of that pin. A second run
# with the same pin builds nothing. Prints the path of the kubectl binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${ELASTI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/elasti-mesh}

key=$(cat "$here"/kubectl/go.mod "$here"/kubectl/go.sum "$here"/kubectl/main.go \
	"$here"/kubectl.sh | sha256sum | cut -c1-16)
out="$cache_root/kubectl/$key"

if [[ -x $out/kubectl ]]; then
	echo "$out/kubectl"
	exit 0
fi

version=$(awk '$1 == "k8s.io/kubectl" { print $2; exit }' "$here/kubectl/go.mod")
minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w \
	-X k8s.io/component-base/version.gitVersion=v1.$minor.${version##*.} \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$minor \
	-X k8s.io/client-go/pkg/version.gitVersion=v1.$minor.${version##*.} \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$minor"

echo "building kubectl $version into $out" >&2
mkdir -p "$out.tmp"
(cd "$here/kubectl" && GOFLAGS=-mod=readonly CGO_ENABLED=0 \
	go build -trimpath -ldflags "$ldflags" -o "$out.tmp/kubectl" .)
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/kubectl"
