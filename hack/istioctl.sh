#!/usr/bin/env bash
# Builds istioctl from its Go module at the pinned version below into a cache folder
# keyed by that version. A second run with the same version builds nothing.
# Prints the path of the istioctl binary.
set -euo pipefail

# The istio.io/istio pseudo-version that istioctl is built from. Istio's main module
# has no semver tags usable by the go command, so a pseudo-version pins it.
version=v0.0.0-20260827124520-eed52ebb66ad

cache_root=${ELASTI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/elasti-mesh}
out="$cache_root/istioctl/$version"

if [[ -x $out/istioctl ]]; then
	echo "$out/istioctl"
	exit 0
fi

# One build at a time: a second caller waits here and then finds the cache filled.
mkdir -p "$cache_root/istioctl"
exec 9>"$cache_root/istioctl/.lock"
flock 9
if [[ -x $out/istioctl ]]; then
	echo "$out/istioctl"
	exit 0
fi

# The linker needs about 2 GB: build outside any module so the project's go.mod plays
# no part, and into a temporary folder so an interrupted build leaves nothing behind.
echo "building istioctl $version into $out" >&2
tmp=$(mktemp -d "$cache_root/istioctl.XXXXXX" 2>/dev/null || { mkdir -p "$cache_root" && mktemp -d "$cache_root/istioctl.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$tmp/bin" \
	go install -trimpath -ldflags "-s -w" "istio.io/istio/istioctl/cmd/istioctl@$version")

mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$tmp/bin" "$out"
echo "$out/istioctl"
