#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from their Go modules at the
# versions pinned in hack/etcd/go.mod and hack/controlplane/go.mod, into a cache
# folder keyed by a hash of those pins. A second run with the same pins builds nothing.
# Prints the folder holding the three binaries (usable as KUBEBUILDER_ASSETS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${ELASTI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/elasti-mesh}

# recipe names the way the binaries are built (flags below); change it when they
# change, so that cached binaries built the old way are not reused.
recipe=1
key=$( (cat "$here"/controlplane/go.mod "$here"/controlplane/go.sum \
	"$here"/controlplane/*/main.go "$here"/etcd/go.mod "$here"/etcd/go.sum \
	"$here"/etcd/main.go; echo "recipe $recipe") | sha256sum | cut -c1-16)
out="$cache_root/controlplane/$key"

if [[ -x $out/etcd && -x $out/kube-apiserver && -x $out/kube-controller-manager ]]; then
	echo "$out"
	exit 0
fi

# One build at a time: concurrent callers (parallel test binaries) wait here and
# then find the cache filled.
mkdir -p "$cache_root/controlplane"
exec 9>"$cache_root/controlplane/.lock"
flock 9
if [[ -x $out/etcd && -x $out/kube-apiserver && -x $out/kube-controller-manager ]]; then
	echo "$out"
	exit 0
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/controlplane/go.mod")
minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w \
	-X k8s.io/component-base/version.gitVersion=$k8s_version \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$minor \
	-X k8s.io/client-go/pkg/version.gitVersion=$k8s_version \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$minor"

# The linker needs about 2.5 GB per binary: build one at a time.
export GOFLAGS=-mod=readonly CGO_ENABLED=0
echo "building etcd into $out" >&2
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" .)
for cmd in kube-apiserver kube-controller-manager; do
	echo "building $cmd $k8s_version into $out" >&2
	(cd "$here/controlplane" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$cmd" "./$cmd")
done

rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
