# Sluice build, test and demo entry points.
#
# Tools the tests need (the Kubernetes control plane, controller-gen,
# golangci-lint) are built from pinned wrapper modules under test/tools/ and
# cached outside the repository, so a fresh clone builds them once per machine.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sluice
TOOLS := test/tools

# Versions are pinned in the wrapper modules under test/tools/. Each tool is
# cached in a folder named after its version and a hash of its go.mod and
# go.sum, so a change to the pins builds afresh, while a fresh clone (whose
# files are all newer than the cache) reuses what is there.
tool-version = $(shell sed -nE 's#^(require[[:space:]]+)?[[:space:]]*$(2)[[:space:]]+v([^[:space:]]+).*#\2#p' $(TOOLS)/$(1)/go.mod | head -1)
tool-hash = $(shell cat $(foreach t,$(1),$(TOOLS)/$(t)/go.mod $(TOOLS)/$(t)/go.sum) | sha256sum | cut -c1-12)

# The control plane: kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd and kwok.
K8S_VERSION := $(call tool-version,kube,k8s.io/kubernetes)
ETCD_VERSION := $(call tool-version,etcd,go.etcd.io/etcd/server/v3)
KWOK_VERSION := $(call tool-version,kwok,sigs.k8s.io/kwok)
CONTROLPLANE_DIR := $(CACHE_DIR)/controlplane/k8s-$(K8S_VERSION)-etcd-$(ETCD_VERSION)-kwok-$(KWOK_VERSION)-$(call tool-hash,kube etcd kwok)
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=v$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(K8S_VERSION))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean

# The data plane of the traffic tests: Traefik and Skipper, each in its own
# cache folder with its CRDs from its module, so the demo builds Traefik
# alone.
TRAEFIK_VERSION := $(call tool-version,traefik,github.com/traefik/traefik/v3)
SKIPPER_VERSION := $(call tool-version,skipper,github.com/zalando/skipper)
# Bump DATAPLANE_RECIPE when the recipes below change what they produce.
DATAPLANE_RECIPE := 3
TRAEFIK_DIR := $(CACHE_DIR)/dataplane/traefik-$(TRAEFIK_VERSION)-$(call tool-hash,traefik)-r$(DATAPLANE_RECIPE)
SKIPPER_DIR := $(CACHE_DIR)/dataplane/skipper-$(SKIPPER_VERSION)-$(call tool-hash,skipper)-r$(DATAPLANE_RECIPE)

CONTROLLER_GEN := $(CACHE_DIR)/tools/controller-gen-$(call tool-version,controller-gen,sigs.k8s.io/controller-tools)-$(call tool-hash,controller-gen)/controller-gen
GOLANGCI_LINT := $(CACHE_DIR)/tools/golangci-lint-$(call tool-version,golangci-lint,github.com/golangci/golangci-lint/v2)-$(call tool-hash,golangci-lint)/golangci-lint

export CGO_ENABLED ?= 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)}' $(MAKEFILE_LIST)

##@ Development

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code, CRDs and RBAC from the Go types and markers.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=kustomize/crds
	$(CONTROLLER_GEN) rbac:roleName=sluice paths="./pkg/...;./router/...;./metrics/..." output:rbac:dir=kustomize/rbac
	rm -f charts/sluice/crds/*.yaml && cp kustomize/crds/*.sluice.dev_*.yaml kustomize/crds/sluice.dev_*.yaml charts/sluice/crds/
	cp kustomize/rbac/role.yaml charts/sluice/files/clusterrole.yaml
	cp charts/sluice/dashboards/sluice.json kustomize/monitoring/sluice.json

# Generates into a copy of the working tree and compares, so it reports
# stale files without touching the ones you are editing.
.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail when generated files are stale, code is not gofmt'ed or go.mod is untidy.
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	tar --exclude=./.git --exclude=./bin -cf - . | tar -C "$$tmp" -xf - && \
	$(MAKE) -s -C "$$tmp" generate CONTROLLER_GEN=$(CONTROLLER_GEN) >/dev/null && \
	if ! diff -r api "$$tmp/api" || ! diff -r kustomize "$$tmp/kustomize" || ! diff -r charts "$$tmp/charts"; then \
		echo "generated files are stale: run 'make generate'"; exit 1; fi
	@files=$$(git ls-files -co --exclude-standard '*.go' | while read -r f; do [ -f "$$f" ] && echo "$$f"; done | xargs gofmt -l); \
	if [ -n "$$files" ]; then echo "not gofmt'ed: $$files"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod is untidy: run 'go mod tidy'"; exit 1; }
	@for d in $(TOOLS)/*/; do (cd $$d && $(GO) mod tidy -diff) || { echo "$$d go.mod is untidy"; exit 1; }; done

.PHONY: docs
docs: ## Regenerate the generated parts of the docs (the router capability table).
	SLUICE_UPDATE_DOCS=1 $(GO) test -run 'TestTheREADMECapabilityTableIsCurrent' ./router/

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

##@ Test

# make test is what CI runs (.ci/run): checks, then every test against a real
# control plane. hack/test.sh runs the steps below, building what later
# steps need beside the first tests (it says how); each builds what it
# needs on first use.
.PHONY: test
test: ## Run all checks and tests.
	@MAKE="$(MAKE)" CACHE_DIR="$(CACHE_DIR)" hack/test.sh

# The tests mostly wait on the API server and on analysis intervals, so
# more of them run at once than go test's default of one per core. The
# packages that hold concurrent code run under the race detector, which
# needs cgo for that run only (the release binaries stay CGO_ENABLED=0);
# the rest run without it, each package once. Test binaries are linked
# without DWARF (-w): a panic's stack trace needs only the symbol table.
.PHONY: unit
unit: controlplane dataplane test-packages test-race test-rest test-dataplane ## Run the Go tests only: RACE_PKGS with -race, the rest without.

# go test's own vet is off: golangci-lint runs go vet's analyzers (govet)
# over the same packages, and go test's would compute their facts for
# every dependency once more for each build, race and plain.
TEST_FLAGS := -count=1 -parallel 8 -timeout 30m -ldflags=-w -vet=off

# test-race, test-rest and test-dataplane are unit's three runs, without
# its builds.
.PHONY: test-race test-rest test-dataplane
test-race:
	$(SLUICE_TEST_ENV) CGO_ENABLED=1 $(GO) test -race $(TEST_FLAGS) $(RACE_PKGS)
test-rest:
	$(SLUICE_TEST_ENV) $(GO) test $(TEST_FLAGS) $$($(GO) list $(SLOW_PKGS)) \
		$$($(GO) list ./... | grep -vxF -f <($(GO) list $(RACE_PKGS) $(SLOW_PKGS) $(DATAPLANE_PKGS)))
test-dataplane:
	$(SLUICE_TEST_ENV) $(GO) test $(TEST_FLAGS) $(DATAPLANE_PKGS)

# The packages that run Traefik or Skipper, or load their CRDs, longest
# first.
DATAPLANE_PKGS ?= ./test/e2e/routing ./test/demo ./router

# The longest packages of test-rest, started first: go test runs two
# packages at once on two cores, and one left for last would run alone.
SLOW_PKGS ?= ./test/e2e/gitops ./test/e2e/governance ./test/chaos ./test/e2e/hostile

# The canary engine, the checks in flight, notifications, the sync
# controllers and the operator's assembly.
RACE_PKGS ?= ./pkg/canary/... ./pkg/analysis/... ./pkg/hook/... ./metrics/... ./pkg/notify/... ./pkg/alert/... \
	./pkg/sync/... ./pkg/source/... ./pkg/image/... ./pkg/receiver/... ./pkg/operator/...

# Each Fuzz target of the module in turn, FUZZTIME each. A crasher stays
# where go test writes it, in its package's testdata/fuzz/<target>/, to
# be committed as a regression seed that every go test runs; the run
# lists the new ones and fails.
FUZZTIME ?= 30s
FUZZ_GUIDED ?= 1
.PHONY: fuzz
fuzz: ## Fuzz every Fuzz target for FUZZTIME (30s) each; crashers stay in testdata/fuzz as seeds.
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZ_GUIDED=$(FUZZ_GUIDED) hack/fuzz.sh

# make test fuzzes each target for a few seconds, past the seeds that
# unit ran, without coverage guidance: in the -race test binaries unit
# built, so that it costs no second build of every dependency with
# coverage counters.
CI_FUZZTIME ?= 1s
.PHONY: fuzz-short
fuzz-short:
	$(MAKE) fuzz FUZZTIME=$(CI_FUZZTIME) FUZZ_GUIDED=0

# A seeded chaos run of the sluice binary (test/chaos): CHAOS_ROLLOUTS
# rollouts of every kind while the operator is SIGKILLed CHAOS_KILLS times,
# the API server restarts, webhook gates hang and Prometheus stops for 30s;
# it prints a table and the seed. CHAOS_SEED=<seed> replays a run. make
# test runs a short one (6 rollouts, 3 kills) within unit.
CHAOS_ROLLOUTS ?= 100
CHAOS_KILLS ?= 12
CHAOS_SEED ?=
.PHONY: chaos
chaos: controlplane test-packages ## Run the chaos run: 100 rollouts under kills and faults (about 10 minutes).
	$(SLUICE_TEST_ENV) SLUICE_CHAOS_ROLLOUTS=$(CHAOS_ROLLOUTS) SLUICE_CHAOS_KILLS=$(CHAOS_KILLS) SLUICE_CHAOS_SEED=$(CHAOS_SEED) \
		$(GO) test -count=1 -v -timeout 45m -run '^TestChaos$$' ./test/chaos/

# One package at a time: on 2 cores, benchmarks running side by side
# measure each other.
.PHONY: bench
bench: controlplane ## Run the benchmarks.
	$(SLUICE_TEST_ENV) $(GO) test -p 1 -run '^$$' -bench . -benchmem -timeout 60m $(BENCH_PKGS)

BENCH_PKGS ?= ./pkg/canary/plan/ ./pkg/receiver/ ./test/bench/ ./test/bench/sync/ ./test/bench/image/ ./test/bench/notify/ ./test/e2e/dashboard/

# The scale benchmark (test/bench/scale): the sluice binary, out of
# process with the install's flags and RBAC, against a control plane of
# its own for each of SCALE_SIZES Canaries. It prints a table, and keeps
# it with the operator's logs and CPU and heap profiles in SCALE_OUT.
# SCALE_IDLE is the idle window (and the baseline window before the
# operator starts). About 10 minutes at 1000 and 55 at 10000 on 2 cores.
SCALE_SIZES ?= 1000 10000
SCALE_IDLE ?= 2m
SCALE_OUT ?= $(CURDIR)/bin/bench-scale
# SCALE_OPERATOR_ARGS adds flags to the install's, to measure another
# setting, such as --kube-api-qps=100; the table names them.
SCALE_OPERATOR_ARGS ?=
.PHONY: bench-scale
bench-scale: controlplane ## Run the scale benchmark at SCALE_SIZES (1000 10000) Canaries; results in SCALE_OUT.
	$(SLUICE_TEST_ENV) SLUICE_SCALE_SIZES="$(SCALE_SIZES)" SLUICE_SCALE_IDLE=$(SCALE_IDLE) SLUICE_SCALE_OUT=$(SCALE_OUT) \
		SLUICE_SCALE_OPERATOR_ARGS="$(SCALE_OPERATOR_ARGS)" \
		$(GO) test -count=1 -run '^$$' -bench '^BenchmarkScale$$' -benchtime=1x -timeout 4h ./test/bench/scale/
SLUICE_TEST_ENV = SLUICE_CONTROLPLANE_DIR=$(CONTROLPLANE_DIR) SLUICE_TRAEFIK_DIR=$(TRAEFIK_DIR) SLUICE_SKIPPER_DIR=$(SKIPPER_DIR)

# The README's dashboard screenshots: the browser test of a live release
# writes overview.png and canary.png into docs/images.
.PHONY: screenshots
screenshots: controlplane test-packages ## Regenerate the dashboard screenshots in docs/images (a real release in a real browser).
	$(SLUICE_TEST_ENV) SLUICE_SCREENSHOTS=$(CURDIR)/docs/images $(GO) test -count=1 -timeout 10m \
		-run '^TestACanaryPageFollowsARealRolloutLive$$' ./test/e2e/dashboard/

##@ Demo

# Two releases of a demo app through Traefik, analysed with Prometheus: v2
# must be promoted and v3 rolled back. Needs root for its network namespace.
# The dashboard's address is the first line, before anything is built, so
# that a browser can follow the whole run; the demo prints it again when
# it starts, on another port if 3100 is taken.
.PHONY: demo
demo: ## Run two real rollouts on this machine, with the dashboard: v2 promoted, v3 rolled back.
	@echo "Sluice dashboard: http://127.0.0.1:3100/ (up once the demo starts; it stays up after the releases until Ctrl-C)"
	@$(MAKE) --no-print-directory demo-run

.PHONY: demo-run
demo-run: controlplane traefik demo-packages
	@$(call step,the demo with the Sluice operator in it,6 minutes)
	$(GO) build -o bin/demo ./test/demo
	@$(call step,the demo app,10 seconds)
	$(GO) build -o bin/demoapp ./test/demoapp
	$(SLUICE_TEST_ENV) bin/demo --app bin/demoapp $(DEMO_ARGS)

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Build controller-gen (cached) and link it into bin/.
	@mkdir -p bin && ln -sf "$(CONTROLLER_GEN)" bin/controller-gen
$(CONTROLLER_GEN):
	@$(call step,controller-gen,1 minute)
	cd $(TOOLS)/controller-gen && $(GO) build -ldflags='-s -w' -o "$@" sigs.k8s.io/controller-tools/cmd/controller-gen

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Build golangci-lint (cached) and link it into bin/.
	@mkdir -p bin && ln -sf "$(GOLANGCI_LINT)" bin/golangci-lint
$(GOLANGCI_LINT):
	@$(call step,golangci-lint,4 minutes)
	cd $(TOOLS)/golangci-lint && $(GO) build -ldflags='-s -w' -o "$@" github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: clean
clean: ## Remove build outputs (not the tool cache).
	rm -rf bin

.PHONY: dataplane
dataplane: traefik skipper ## Build Traefik and Skipper for the traffic tests (cached).

.PHONY: traefik
traefik: $(TRAEFIK_DIR)/.complete ## Build Traefik, the demo's and the traffic tests' proxy (cached).

.PHONY: skipper
skipper: $(SKIPPER_DIR)/.complete ## Build Skipper for the traffic tests (cached).

$(TRAEFIK_DIR)/.complete:
	@echo ">> building Traefik v$(TRAEFIK_VERSION) into $(TRAEFIK_DIR) (first run only)"
	rm -rf "$(TRAEFIK_DIR).tmp" && mkdir -p "$(TRAEFIK_DIR).tmp/crds"
	@$(call step,traefik,10 minutes)
	cd $(TOOLS)/traefik && $(GO) build -ldflags='-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=v$(TRAEFIK_VERSION)' \
		-o "$(TRAEFIK_DIR).tmp/traefik" github.com/traefik/traefik/v3/cmd/traefik
	cd $(TOOLS)/traefik && cp "$$($(GO) list -m -f '{{.Dir}}' github.com/traefik/traefik/v3)/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
		"$(TRAEFIK_DIR).tmp/crds/traefik.yaml"
	chmod -R u+w "$(TRAEFIK_DIR).tmp"
	touch "$(TRAEFIK_DIR).tmp/.complete"
	rm -rf "$(TRAEFIK_DIR)" && mv "$(TRAEFIK_DIR).tmp" "$(TRAEFIK_DIR)"

$(SKIPPER_DIR)/.complete:
	@echo ">> building Skipper v$(SKIPPER_VERSION) into $(SKIPPER_DIR) (first run only)"
	rm -rf "$(SKIPPER_DIR).tmp" && mkdir -p "$(SKIPPER_DIR).tmp/crds"
	@$(call step,skipper,6 minutes)
	cd $(TOOLS)/skipper && $(GO) build -ldflags='-s -w' -o "$(SKIPPER_DIR).tmp/skipper" github.com/zalando/skipper/cmd/skipper
	cd $(TOOLS)/skipper && cp "$$($(GO) list -m -f '{{.Dir}}' github.com/zalando/skipper)/dataclients/kubernetes/deploy/apply/routegroups_crd.yaml" \
		"$(SKIPPER_DIR).tmp/crds/skipper-routegroups.yaml"
	chmod -R u+w "$(SKIPPER_DIR).tmp"
	touch "$(SKIPPER_DIR).tmp/.complete"
	rm -rf "$(SKIPPER_DIR)" && mv "$(SKIPPER_DIR).tmp" "$(SKIPPER_DIR)"

# prefetch downloads the modules of Sluice and of every pinned tool, all at
# once: make test runs it beside the first builds, which are CPU-bound.
.PHONY: prefetch
prefetch:
	@for d in . $(TOOLS)/*/; do (cd "$$d" && $(GO) mod download) & done; wait

# Debian packages the tests run: prometheus for the metric tests,
# prometheus-alertmanager for the notification tests, git
# with git-http-backend for the Git source tests, and chromium for the
# dashboard's browser tests. Installed once per machine, only when missing
# (CI runs as root; elsewhere sudo asks). The demo needs prometheus only.
.PHONY: test-packages
test-packages: ## Install the Debian packages the tests run (prometheus, alertmanager, git, chromium), when missing.
	@$(call apt-install,prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager git:/usr/lib/git-core/git-http-backend chromium:chromium)

.PHONY: demo-packages
demo-packages:
	@$(call apt-install,prometheus:prometheus)

# apt-install installs each package:command pair whose command (a name on
# PATH, or an absolute path) is missing.
apt-install = missing=; \
	for pair in $(1); do \
		pkg=$${pair%%:*}; cmd=$${pair\#*:}; \
		if [ "$${cmd\#/}" != "$$cmd" ]; then [ -x "$$cmd" ] || missing="$$missing $$pkg"; \
		else command -v "$$cmd" >/dev/null || missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
		echo ">> installing$$missing from Debian (first run only; usually under a minute)"; \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get install -y --no-install-recommends $$missing >/dev/null || \
		{ $$sudo apt-get update >/dev/null && $$sudo apt-get install -y --no-install-recommends $$missing >/dev/null; }; \
	fi

# step prints one line before a build step: what it builds and how long
# it usually takes cold on 2 cores (a warm Go cache makes it seconds).
step = echo ">>   building $(1) (cold: about $(2))"

.PHONY: controlplane
controlplane: $(CONTROLPLANE_DIR)/.complete ## Build the test control plane (cached).

# Built into a scratch folder and moved into place, so an interrupted build
# never leaves a half-filled cache that later runs would trust.
$(CONTROLPLANE_DIR)/.complete:
	@echo ">> building the control plane v$(K8S_VERSION) into $(CONTROLPLANE_DIR) (first run only)"
	rm -rf "$(CONTROLPLANE_DIR).tmp" && mkdir -p "$(CONTROLPLANE_DIR).tmp/kwok-stages"
	@$(call step,etcd,2 minutes)
	cd $(TOOLS)/etcd && $(GO) build -ldflags='-s -w' -o "$(CONTROLPLANE_DIR).tmp/etcd" go.etcd.io/etcd/server/v3
	@$(call step,kube-apiserver,8 minutes)
	cd $(TOOLS)/kube && $(GO) build -ldflags='$(K8S_LDFLAGS)' -o "$(CONTROLPLANE_DIR).tmp/" k8s.io/kubernetes/cmd/kube-apiserver
	@$(call step,kube-controller-manager and kube-scheduler,3 minutes)
	cd $(TOOLS)/kube && $(GO) build -ldflags='$(K8S_LDFLAGS)' -o "$(CONTROLPLANE_DIR).tmp/" \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	@$(call step,kwok,3 minutes)
	cd $(TOOLS)/kwok && $(GO) build -ldflags='-s -w' -o "$(CONTROLPLANE_DIR).tmp/kwok" sigs.k8s.io/kwok/cmd/kwok
	cd $(TOOLS)/kwok && stages="$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage" && \
		cp "$$stages/node/fast/node-initialize.yaml" "$$stages/pod/fast/pod-ready.yaml" \
		   "$$stages/pod/fast/pod-complete.yaml" "$$stages/pod/fast/pod-delete.yaml" "$(CONTROLPLANE_DIR).tmp/kwok-stages/"
	chmod -R u+w "$(CONTROLPLANE_DIR).tmp"
	touch "$(CONTROLPLANE_DIR).tmp/.complete"
	rm -rf "$(CONTROLPLANE_DIR)" && mv "$(CONTROLPLANE_DIR).tmp" "$(CONTROLPLANE_DIR)"
