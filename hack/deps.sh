#!/usr/bin/env bash
# Installs and builds what the tests and the sandbox need, skipping whatever is
# already there: Debian's prometheus package (as root, or through sudo), then the
# pinned control plane, istioctl and kubectl, each cached by version.
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

"$here/controlplane.sh" >/dev/null
"$here/istioctl.sh" >/dev/null
"$here/kubectl.sh" >/dev/null
