#!/usr/bin/env bash
# Installs and builds what the tests and the sandbox need, skipping whatever is
# already there: Debian's prometheus package (as root, or through sudo), then the
# pinned control plane, istioctl and kubectl, each cached by version.
#
# istioctl is built beside the control plane: the two share no packages, and each
# build leaves a core idle for long stretches (its links, and the largest generated
# packages, which compile on one core). kubectl comes after the control plane,
# whose compiled Kubernetes packages it reuses from the Go build cache.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v prometheus >/dev/null; then
	sudo=()
	[[ $(id -u) == 0 ]] || sudo=(sudo)
	echo "installing Debian's prometheus package" >&2
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

"$here/istioctl.sh" >/dev/null &
istioctl=$!
trap 'kill "$istioctl" 2>/dev/null || true' EXIT
"$here/controlplane.sh" >/dev/null
"$here/kubectl.sh" >/dev/null
wait "$istioctl"
trap - EXIT
