#!/usr/bin/env bash
# The elasti demo, against a real Kubernetes cluster (the current kubectl context):
# install Istio and elasti, deploy the sample, watch it go to zero, wake it with a
# request from inside the mesh and one through the ingress gateway, and print the
# timeline.
#
# Needs kubectl and istioctl on PATH and a cluster you may install into. Options,
# as environment variables:
#   SKIP_ISTIO=1       Istio is already installed (with an ingress gateway);
#                      otherwise "istioctl install --set profile=demo" runs.
#   PROMETHEUS_YAML=f  manifest of a Prometheus that scrapes the mesh into
#                      istio-system/prometheus:9090, for example the one in an
#                      Istio release's samples/addons/prometheus.yaml. Without it
#                      the demo expects that Prometheus to exist already.
#   KEDA_YAML=f        KEDA's release manifest, applied if given. Without KEDA the
#                      sample ScaledObject is left out and the ElastiService runs
#                      without an autoscaler.
#   IMAGE=ref          elasti image (default ghcr.io/elasti-mesh/elasti:v0.1.0).
#   CLEANUP=1          delete the sample and elasti at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ns=elasti-demo
start=$(date +%s)
timeline=()

# note prints a step and records it, with the seconds since the demo started.
note() {
	local t=$(($(date +%s) - start))
	timeline+=("$(printf '%5ss  %s' "$t" "$*")")
	printf '\n[%5ss] %s\n' "$t" "$*"
}

# wait_for runs a command every 2s until it succeeds, for at most $1 seconds.
wait_for() {
	local limit=$1 what=$2
	shift 2
	local deadline=$(($(date +%s) + limit))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) > deadline)); then
			echo "timed out after ${limit}s waiting for: $what" >&2
			return 1
		fi
		sleep 2
	done
}

mode_is() { [[ $(kubectl -n "$ns" get elastiservice demo -o jsonpath='{.status.mode}') == "$1" ]]; }
replicas_are() { [[ $(kubectl -n "$ns" get deployment demo -o jsonpath='{.spec.replicas}') == "$1" ]]; }
ready_replicas() { kubectl -n "$ns" get deployment demo -o jsonpath='{.status.readyReplicas}'; }
route_names() { kubectl -n "$ns" get virtualservice demo -o jsonpath='{.spec.http[*].name}'; }

# mesh_curl sends one request from the curl pod (inside the mesh) and prints the
# status and how long it took.
mesh_curl() {
	kubectl -n "$ns" exec curl -c curl -- curl -sS -o /dev/null --max-time 120 \
		-w 'HTTP %{http_code} in %{time_total}s\n' http://demo.$ns.svc.cluster.local/
}

check_tools() {
	for tool in kubectl istioctl; do
		command -v "$tool" >/dev/null || { echo "$tool is not on PATH" >&2; exit 1; }
	done
	kubectl version >/dev/null || { echo "kubectl cannot reach a cluster" >&2; exit 1; }
}

install_istio() {
	if [[ ${SKIP_ISTIO:-} == 1 ]]; then
		note "using the Istio already installed"
	else
		note "installing Istio (demo profile, with ingress gateway)"
		istioctl install -y --set profile=demo
	fi
	if [[ -n ${PROMETHEUS_YAML:-} ]]; then
		kubectl apply -f "$PROMETHEUS_YAML"
	fi
	wait_for 300 "Prometheus in istio-system" kubectl -n istio-system rollout status deployment/prometheus --timeout=5s
	if [[ -n ${KEDA_YAML:-} ]]; then
		note "installing KEDA"
		kubectl apply --server-side -f "$KEDA_YAML"
		wait_for 300 "KEDA operator" kubectl -n keda rollout status deployment/keda-operator --timeout=5s
	fi
}

install_elasti() {
	note "installing elasti (kubectl apply -k manifests/)"
	local dir
	dir=$(mktemp -d)
	cat >"$dir/kustomization.yaml" <<-KUST
		resources:
		- $(realpath --relative-to="$dir" "$repo/manifests")
		images:
		- name: ghcr.io/elasti-mesh/elasti
		  newName: ${IMAGE%:*}
		  newTag: ${IMAGE##*:}
	KUST
	kubectl apply -k "$dir"
	rm -rf "$dir"
	kubectl -n elasti-system rollout status deployment/elasti-extproc --timeout=180s
	kubectl -n elasti-system rollout status deployment/elasti-scaler --timeout=180s
}

deploy_sample() {
	note "deploying the sample app, VirtualService and ElastiService"
	if kubectl get crd scaledobjects.keda.sh >/dev/null 2>&1; then
		kubectl apply -k "$repo/manifests/samples"
	else
		kubectl apply -f "$repo/manifests/samples/demo-app.yaml" \
			-f "$repo/manifests/samples/virtualservice.yaml"
		kubectl apply -f "$repo/manifests/samples/elastiservice.yaml"
		kubectl -n "$ns" patch elastiservice demo --type=json \
			-p '[{"op": "remove", "path": "/spec/autoscaler"}]'
	fi
	kubectl -n "$ns" rollout status deployment/demo --timeout=180s
	kubectl -n "$ns" run curl --image=docker.io/curlimages/curl:8.11.1 --restart=Never \
		--command -- sleep 3600 2>/dev/null || true
	kubectl -n "$ns" wait pod/curl --for=condition=Ready --timeout=180s
	wait_for 120 "ElastiService demo in serve mode" mode_is serve
	note "warm request: $(mesh_curl)"
}

watch_to_zero() {
	note "no traffic now; waiting for the cooldown (120s) and an idle trigger"
	wait_for 900 "routes in hold" mode_is hold
	note "ElastiService in hold; VirtualService route names: $(route_names)"
	wait_for 120 "demo at zero replicas" replicas_are 0
	note "demo scaled to 0 replicas"
}

wake_up() {
	note "cold request from inside the mesh (held by elasti-extproc until a pod is ready)"
	note "cold request: $(mesh_curl)"
	note "demo ready replicas: $(ready_replicas)"
	wait_for 120 "routes back to serve" mode_is serve
	note "ElastiService in serve; VirtualService route names: $(route_names)"
	note "warm request: $(mesh_curl)"
}

through_gateway() {
	wait_for 900 "hold again before the gateway request" mode_is hold
	note "in hold again; cold request through the ingress gateway"
	local pf_log
	pf_log=$(mktemp)
	kubectl -n istio-system port-forward svc/istio-ingressgateway 18080:80 >"$pf_log" 2>&1 &
	local pf=$!
	local result=failed
	if wait_for 30 "port-forward to the ingress gateway" grep -q Forwarding "$pf_log"; then
		result=$(curl -sS -o /dev/null --max-time 120 -H 'Host: demo.example.com' \
			-w 'HTTP %{http_code} in %{time_total}s' http://127.0.0.1:18080/ || echo failed)
	fi
	kill "$pf" 2>/dev/null || true
	rm -f "$pf_log"
	note "gateway request: $result"
	wait_for 120 "routes back to serve" mode_is serve
}

show_timeline() {
	echo
	echo "Timeline"
	printf '%s\n' "${timeline[@]}"
	echo
	echo "Events of the ElastiService"
	kubectl -n "$ns" get events --field-selector involvedObject.kind=ElastiService \
		--sort-by=.lastTimestamp -o custom-columns=TIME:.lastTimestamp,REASON:.reason,MESSAGE:.message
}

cleanup() {
	[[ ${CLEANUP:-} == 1 ]] || return 0
	note "cleaning up"
	kubectl delete namespace "$ns" --wait=true
	kubectl delete -k "$repo/manifests" --ignore-not-found
}

IMAGE=${IMAGE:-ghcr.io/elasti-mesh/elasti:v0.1.0}
check_tools
install_istio
install_elasti
deploy_sample
watch_to_zero
wake_up
through_gateway
show_timeline
cleanup
