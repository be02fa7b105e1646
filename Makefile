# modelpilot — one Makefile for every gate. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The project's distributions, one directory each (docs/architecture.md, "Layout"): the core at the
# root, the operator, one per service (and their shared server frame), and the dev-only harnesses.
SERVICES := httpserver router modelserver driftjob
DISTS := . operator $(addprefix services/,$(SERVICES)) dev
PYPROJECTS := $(patsubst ./%,%,$(addsuffix /pyproject.toml,$(DISTS)))
STAMP := $(VENV)/.installed-$(shell cat $(PYPROJECTS) | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n", $$1, $$2}'

# ---- set-up ------------------------------------------------------------------------------
# Every distribution, editable: the core with its CLI tooling and the dev tools, the operator, each
# service (router, model server, drift job) and the server frame two of them share, and the
# development-only modelpilot-dev (dev/: the test harnesses modelpilot.testing and the demo
# modelpilot.demo). A venv made before the services were split holds modelpilot-services, whose
# entry points would repeat the new ones: it is removed first. The benchmarks' baselines
# (MLServer, Evidently) make venvs of their own on first use (modelpilot.testing.mlserver,
# .evidently): they pin nothing here.
$(STAMP): $(PYPROJECTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if $(PY) -m pip show --quiet modelpilot-services 2>/dev/null; then \
	  $(PY) -m pip uninstall --quiet --yes modelpilot-services; fi
	$(PY) -m pip install --quiet -e '.[cli,dev]' -e ./operator \
	  $(foreach s,$(SERVICES),-e ./services/$(s)) -e ./dev
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv; install every distribution (core, operator, each service, dev-only harnesses) editable, with the dev extras

# ---- gates -------------------------------------------------------------------------------
.PHONY: fmt
fmt: venv ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: check
check: venv prometheus-binaries redis-binaries ## format check, lint, types, import layers, fast tests
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	@# The roots of the namespace package by path: `mypy -p modelpilot` stops at src/.
	$(VENV)/bin/mypy src/modelpilot operator/modelpilot $(foreach s,$(SERVICES),services/$(s)/modelpilot) dev/modelpilot
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not mlflow and not k8s and not slow and not kind" -q $(PYTEST_ARGS)

.PHONY: setup builds
setup: venv prometheus-binaries redis-binaries builds ## what make test needs: the venv, apt packages, then the Go binaries and the images side by side

builds: ## the Go binaries (control plane, then node) built beside the images (hack/parallel.sh); cached, a second when warm
	@MAKE="$(MAKE)" bash hack/parallel.sh go='k8s-binaries node-binaries' images=images

.PHONY: test
test: setup ## every test tier present (unit, services, control plane, real pods on a real node); sets itself up
	$(PY) -m pytest -m "not kind" $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: venv builds ## the end-to-end tier alone on a real node (part of make test; ~9 min with warm caches, +5 min when the images rebuild)
	$(PY) -m pytest tests/e2e -m "realnode" $(PYTEST_ARGS)

# ---- control plane (built from Go modules, cached outside the repo) ----------------------
.PHONY: k8s-binaries
k8s-binaries: ## build (or reuse) etcd, kube-*, kubectl, kwok, helm from Go modules
	@bash hack/build-binaries.sh

# ---- the real Prometheus and Pushgateway the tests run against (Debian packages) -----------
.PHONY: prometheus-binaries
prometheus-binaries: ## install prometheus, promtool, prometheus-pushgateway (apt) when missing; no service left running
	@bash hack/install-prometheus.sh

# ---- the real Redis the routers' shared reward de-duplication is tested against (Debian) ----
.PHONY: redis-binaries
redis-binaries: ## install redis-server (apt) when missing; no service left running
	@bash hack/install-redis.sh

# ---- sections filled in by each area (keep each area's targets in its block) -------------
# [control-plane targets]
.PHONY: cluster-up cluster-down test-k8s
# NODE=kwok (default): one fake node. NODE=real: a real node (kubelet, containerd + runc, CNI
# bridge, kube-proxy in iptables mode, CoreDNS) in its own network namespace; needs root.
NODE ?= kwok
cluster-up: venv k8s-binaries $(if $(filter real,$(NODE)),node-binaries) ## start the local control plane (NODE=real: a real node); writes .cluster/kubeconfig
	$(PY) -m modelpilot.testing.controlplane up --dir .cluster --node $(NODE)

.PHONY: node-binaries
node-binaries: ## install containerd, runc, CNI plugins, iptables (apt); build kubelet, kube-proxy, coredns
	@bash hack/node-binaries.sh

cluster-down: venv ## stop the control plane started by cluster-up (no process left behind)
	$(PY) -m modelpilot.testing.controlplane down --dir .cluster

test-k8s: venv k8s-binaries ## the control-plane tier only (tests marked k8s)
	$(PY) -m pytest -m "k8s and not kind" $(PYTEST_ARGS)

# [services targets]
.PHONY: services-test bench-serving
services-test: venv prometheus-binaries redis-binaries ## model server, router, drift job over real sockets and a real MLflow server
	$(PY) -m pytest tests/services -m "not k8s and not kind" $(PYTEST_ARGS)

bench-serving: venv ## model server vs `mlflow models serve`, router vs direct call and vs nginx (wrk)
	@mkdir -p bench/out
	$(PY) bench/serving.py --out bench/out/serving.json

# A subset of cells and the rounds of the two comparisons below, e.g.
# `make bench-serving-batching BENCH_CELLS=rows1_c1 BENCH_ROUNDS=40 BENCH_SECONDS=3`.
BENCH_CELLS ?=
BENCH_ROUNDS ?=
BENCH_SECONDS ?=

.PHONY: bench-serving-mlserver bench-serving-batching proto
bench-serving-mlserver: venv ## model server vs MLServer 1.7 (its own venv): v2 infer, 1/64 rows, 1/8 connections, batching off/on
	@mkdir -p bench/out
	$(PY) bench/serving.py --mlserver-only --seconds $(or $(BENCH_SECONDS),5) $(if $(BENCH_ROUNDS),--mlserver-rounds $(BENCH_ROUNDS)) $(if $(BENCH_CELLS),--cells $(BENCH_CELLS)) --out bench/out/serving.json

bench-serving-batching: venv ## model server, batching on vs off (no MLServer): per-round p99 at 1 connection, median difference and its interval
	@mkdir -p bench/out
	$(PY) bench/serving.py --batching-only $(if $(BENCH_SECONDS),--seconds $(BENCH_SECONDS)) $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) $(if $(BENCH_CELLS),--cells $(BENCH_CELLS)) --out bench/out/serving.json

proto: venv ## regenerate the model server's gRPC modules from modelserver/proto/predict_v2.proto (grpcio-tools)
	cd services/modelserver && ../../$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. modelpilot/modelserver/proto/predict_v2.proto

# [lifecycle targets]
.PHONY: lifecycle-test examples sweep-example
lifecycle-test: venv ## lifecycle tier: tracking, sweeps, registry, cards, gate (starts a real MLflow server)
	$(PY) -m pytest tests/lifecycle -q $(PYTEST_ARGS)

examples: venv ## run the iris and breast cancer pipelines against MLFLOW_TRACKING_URI
	@test -n "$${MLFLOW_TRACKING_URI:-}" || { echo "set MLFLOW_TRACKING_URI (an MLflow server)"; exit 2; }
	$(PY) examples/iris/pipeline.py --out model_card/iris
	$(PY) examples/breast_cancer/pipeline.py --out model_card/breast_cancer

sweep-example: venv ## the 20-trial breast cancer sweep (resumes if run again) against MLFLOW_TRACKING_URI
	$(VENV)/bin/modelpilot sweep --config examples/breast_cancer/sweep.yaml
# [operator targets]
.PHONY: manifests operator-test bench-operator bench-operator-idle
manifests: venv ## render the CRDs and the operator's RBAC from src/modelpilot/api
	$(PY) -m modelpilot.api render --out manifests/crds --rbac-out manifests/rbac

operator-test: venv k8s-binaries prometheus-binaries ## operator unit tests and control-plane tests
	$(PY) -m pytest tests/operator tests/api -q $(PYTEST_ARGS)

bench-operator: venv k8s-binaries ## 1,000 ModelDeployments at once: time to all Ready, operator peak memory
	@mkdir -p bench/out
	$(PY) bench/operator_scale.py --count 1000 --out bench/out/operator.json

bench-operator-idle: venv k8s-binaries ## 500 ModelDeployments at rest: API requests/s and CPU, relist vs cache
	@mkdir -p bench/out
	$(PY) bench/operator_idle.py --out bench/out/operator_idle.json

# [delivery targets]
# Chart, install bundle, image, dashboards, alerts and the kind workflow (docs/delivery.md).
CHART := charts/modelpilot
CHART_CI_VALUES := $(sort $(wildcard $(CHART)/ci/*-values.yaml))
# helm and promtool: the ones built/installed for this repository unless given (HELM=helm).
K8S_BIN = $(shell bash hack/build-binaries.sh --print-dir)
HELM ?= $(K8S_BIN)/helm
KUBECTL ?= $(K8S_BIN)/kubectl
PROMTOOL ?= promtool
DOCKER ?= docker
KIND ?= kind
KIND_CLUSTER ?= modelpilot
KIND_NAMESPACE ?= modelpilot
IMAGE_REGISTRY ?= ghcr.io/modelpilot
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' $(CHART)/Chart.yaml)
# Dockerfile target -> image name (the general image is `modelpilot`).
IMAGE_TARGETS := modelpilot operator model-server router drift

# Say clearly what is missing and stop: the kind tier needs a Docker engine and kind.
define require-docker-kind
	@command -v $(DOCKER) >/dev/null 2>&1 || { echo "$@: '$(DOCKER)' is not installed: the kind workflow needs Docker (docs/delivery.md); on this machine use 'make cluster-up' instead" >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "$@: no Docker engine answers ('$(DOCKER) info' failed): start dockerd, or use 'make cluster-up' (kwok control plane) instead" >&2; exit 1; }
	@command -v $(KIND) >/dev/null 2>&1 || { echo "$@: '$(KIND)' is not installed: 'go install sigs.k8s.io/kind@latest' puts it in ~/go/bin" >&2; exit 1; }
endef

.PHONY: crds chart-sync chart-schema chart-lint manifests-bundle promtool alerts-check images kind-up kind-load kind-deploy e2e-kind kind-down test-delivery
chart-sync: ## copy CRDs, RBAC, dashboards and alert rules into the chart (tests check they are equal)
	@mkdir -p $(CHART)/files/crds $(CHART)/files/rbac $(CHART)/files/dashboards $(CHART)/files/alerts
	rm -f $(CHART)/files/crds/*.yaml $(CHART)/files/rbac/*.yaml $(CHART)/files/dashboards/*.json
	cp manifests/crds/*.yaml $(CHART)/files/crds/
	cp manifests/rbac/*.yaml $(CHART)/files/rbac/
	cp dashboards/*.json $(CHART)/files/dashboards/
	cp alerts/modelpilot-rules.yaml $(CHART)/files/alerts/

chart-schema: ## regenerate charts/modelpilot/values.schema.json from the commented values.yaml (after adding values)
	$(PY) hack/chart_schema.py

crds: manifests chart-sync chart-schema manifests-bundle ## after an API change: render CRDs/RBAC, copy them into the chart, regenerate the values schema, re-render the bundle

chart-lint: ## helm lint --strict and helm template over every ci/*-values.yaml
	@for f in $(CHART_CI_VALUES); do \
	  echo "== $$f"; \
	  $(HELM) lint --strict $(CHART) -f $$f && \
	  $(HELM) template lint-check $(CHART) -n modelpilot -f $$f >/dev/null || exit 1; \
	done

manifests-bundle: ## render manifests/install.yaml (plain install bundle) from the chart
	@{ echo "# modelpilot install bundle, rendered from charts/modelpilot by 'make manifests-bundle'; do not edit."; \
	   echo "# kubectl apply --server-side -f manifests/install.yaml"; \
	   echo "---"; \
	   echo "apiVersion: v1"; echo "kind: Namespace"; echo "metadata:"; echo "  name: modelpilot"; \
	   $(HELM) template modelpilot $(CHART) -n modelpilot --set tests.enabled=false; \
	 } > manifests/install.yaml
	@echo "wrote manifests/install.yaml"

promtool: prometheus-binaries ## promtool (Debian package prometheus), installed when missing

alerts-check: promtool ## promtool check rules and promtool test rules (alerts/tests/*.yaml)
	$(PROMTOOL) check rules alerts/modelpilot-rules.yaml
	$(PROMTOOL) test rules alerts/tests/*.yaml

images: ## build (or reuse) the five images: podman from a Debian-package base here, Docker where it answers (hack/images.sh)
	@IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) bash hack/images.sh

kind-up: ## create the kind cluster (KIND_CLUSTER, default modelpilot; needs Docker and kind)
	$(require-docker-kind)
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then echo "kind cluster $(KIND_CLUSTER) already exists"; \
	 else $(KIND) create cluster --name $(KIND_CLUSTER) --config tests/kind/kind-cluster.yaml --wait 120s; fi

kind-load: images ## load the images of 'make images' into the kind cluster (one archive, whichever engine built it)
	$(require-docker-kind)
	$(KIND) load image-archive --name $(KIND_CLUSTER) "$$(IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) bash hack/images.sh --print-archive)"

kind-deploy: ## install the chart with MLflow on kind, register a model, apply an example
	$(require-docker-kind)
	$(HELM) upgrade --install modelpilot $(CHART) --kube-context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) --create-namespace \
	  -f $(CHART)/ci/kind-values.yaml --set operator.image.tag=$(IMAGE_TAG) --wait --timeout 10m
	$(HELM) test modelpilot --kube-context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) --timeout 5m
	$(KUBECTL) --context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) delete job register-iris --ignore-not-found
	sed 's/__IMAGE_TAG__/$(IMAGE_TAG)/' tests/kind/register-model-job.yaml | $(KUBECTL) --context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) apply -f -
	$(KUBECTL) --context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) wait --for=condition=complete job/register-iris --timeout=10m
	$(KUBECTL) --context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) apply -f manifests/examples/modeldeployment.yaml
	$(KUBECTL) --context kind-$(KIND_CLUSTER) -n $(KIND_NAMESPACE) wait --for=condition=Ready modeldeployment/iris --timeout=10m

e2e-kind: venv ## the end-to-end tier against the kind cluster (tests/kind: the bodies of tests/e2e, marker kind)
	$(require-docker-kind)
	MODELPILOT_KIND_CONTEXT=kind-$(KIND_CLUSTER) MODELPILOT_KIND_NAMESPACE=$(KIND_NAMESPACE) \
	  $(PY) -m pytest -m kind tests/kind $(PYTEST_ARGS)

kind-down: ## delete the kind cluster
	$(require-docker-kind)
	$(KIND) delete cluster --name $(KIND_CLUSTER)

test-delivery: venv k8s-binaries prometheus-binaries ## the delivery tests (chart, bundle, dashboards, alerts, RBAC) on the control plane
	$(PY) -m pytest tests/delivery $(PYTEST_ARGS)

# [demo targets]
.PHONY: demo demo-report
demo: venv k8s-binaries ## the whole loop locally: MLflow, control plane, operator, Thompson experiment, promotion, drift; report in .demo/
	$(VENV)/bin/modelpilot demo --state-dir .demo

demo-report: venv ## rebuild .demo/report.html from the last run's .demo/timeline.json
	$(VENV)/bin/modelpilot demo report --timeline .demo/timeline.json --out .demo/report.html

# [bench targets]
.PHONY: bench
bench: venv k8s-binaries ## run every bench-* target present, then write bench/RESULTS.md (machine, versions, ratios)
	$(PY) bench/report.py --run --make "$(MAKE)"

.PHONY: bench-regret
bench-regret: venv ## cumulative regret of the experiment loop: thompson vs epsilon-greedy vs fixed 50/50, same traffic
	@mkdir -p bench/out
	$(PY) bench/regret.py --out bench/out/regret.json

.PHONY: bench-drift
bench-drift: venv ## drift stats (PSI+KS+JS per column): modelpilot vs plain loop vs Evidently, 200k x 20 and 1M x 50
	@mkdir -p bench/out
	$(PY) bench/drift.py --out bench/out/drift.json
