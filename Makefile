# The project's build, generation, lint and test entry points. Every tool is pinned
# in a go.mod under hack/ and run through the go command.

SHELL := /usr/bin/env bash -o pipefail
GO ?= go
TOOLS := $(GO) tool -modfile=hack/tools/go.mod
BUF := $(GO) tool -modfile=hack/buf/go.mod buf

# Folder holding etcd, kube-apiserver and kube-controller-manager, built and
# cached by hack/controlplane.sh.
CONTROLPLANE = $(shell hack/controlplane.sh)

.PHONY: all
all: generate lint test

.PHONY: generate
generate: generate-api generate-proto ## Regenerate deepcopy code, the CRD and the gRPC code.

.PHONY: generate-api
generate-api:
	$(TOOLS) controller-gen object paths=./api/... crd output:crd:artifacts:config=manifests/crd

.PHONY: generate-proto
generate-proto:
	$(BUF) generate

.PHONY: verify-generate
verify-generate: generate ## Fail if generated files differ from what is committed.
	@changed=$$(git status --porcelain -- api manifests/crd proto); \
		[ -z "$$changed" ] || { echo "generated files are out of date, run 'make generate' and commit:"; \
		echo "$$changed"; exit 1; }

.PHONY: lint
lint: ## go vet, staticcheck, gofmt, buf lint, and a tidy go.mod.
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(TOOLS) staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(BUF) lint

.PHONY: controlplane
controlplane: ## Build (or find cached) etcd, kube-apiserver and kube-controller-manager.
	@echo $(CONTROLPLANE)

.PHONY: deps
deps: ## Install Prometheus if missing; build (or find cached) the control plane, istioctl, kubectl.
	hack/deps.sh

.PHONY: test
test: deps ## Every test, against the real control plane and Prometheus.
	KUBEBUILDER_ASSETS=$(CONTROLPLANE) $(GO) test -count=1 -timeout 30m ./...

.PHONY: sandbox
sandbox: deps ## Run elasti on a local cluster and show a cold start; Ctrl-C stops it.
	$(GO) build -o bin/sandbox ./integration/cmd/sandbox
	@# Run the binary itself rather than through go run, which exits 1 on Ctrl-C
	@# even when the program stopped cleanly.
	@KUBEBUILDER_ASSETS=$(CONTROLPLANE) bin/sandbox

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
