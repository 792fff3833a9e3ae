# Two commands matter: `make up` runs the system, `make test` runs every test.
# Both create the virtual environment on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock | cksum | cut -d' ' -f1)
PKI    := .dev/pki

MANIFESTS := $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))

# The commit `buf breaking` compares proto/ with (make lint PROTO_AGAINST=main; empty skips it).
PROTO_AGAINST ?= HEAD~1

.PHONY: help install tools up reset test test-fast lint proto-lint k8s-check containers proto proto-check pki grpcurl lock bench chaos clean

help:
	@echo "make up          start every service on the embedded store (dev certificates included)"
	@echo "make reset       forget the data make up stored (accounts, products, orders); keeps the dev certificates"
	@echo "make test        run the whole test suite (starts a real Cassandra and Jaeger)"
	@echo "make tools       fetch Cassandra and build Jaeger, grpcurl and buf (once per version; make test does it)"
	@echo "make proto       regenerate gen/ from proto/"
	@echo "make pki         (re)create the dev certificates under $(PKI)"
	@echo "make grpcurl     build grpcurl from source (pinned, once) and link it as bin/grpcurl"
	@echo "make lint        ruff, mypy, buf lint and breaking, hadolint, actionlint, zizmor and the Kubernetes schemas"
	@echo "make chaos       the Cassandra network-partition test three times in a row, with its figures (root)"
	@echo "make containers  the full stack in real containers on a private Docker engine, smoke and chaos checked (root)"

# uv installs the lock's wheels in parallel: about 3 s where pip took 40 s on a cold cache (the
# figures and the command are in docs/getting-started.md); it is itself pinned in requirements.lock.
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.lock)

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned dependencies of requirements.lock into $(VENV) (uv $(UV_VERSION))"
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(PY) -r requirements.lock
	# Put the repository and the generated code on the venv's import path.
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/shop-repo.pth"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

pki: install
	$(PY) -m tools.devstack --pki-only

up: install pki
	$(PY) -m tools.devstack

# Forgets what make up stored (accounts, products, orders, the demo credentials); keeps the dev
# certificates in .dev/pki (a browser may trust their CA). Stop make up first (Ctrl-C).
reset:
	rm -rf .dev/data .dev/demo-credentials.json .dev/jaeger.log

# The real parts the tests run, fetched or built once per pinned version into the cache outside the
# checkout (~/.cache/shop, or SHOP_CACHE): Apache Cassandra's jars (Maven), Jaeger, grpcurl and buf (Go).
tools: install
	$(PY) -m tools.cassandra --fetch
	$(PY) -m tools.gotools jaeger grpcurl buf
	# axe-core (pinned by tests/browser/package-lock.json) for the browser tests; Chromium is Debian's.
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	# Redocly CLI (pinned by tools/openapi/package-lock.json) lints the OpenAPI document in the tests.
	cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error

test: install tools
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit

lint: install k8s-check proto-lint
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(BIN)/hadolint Dockerfile tools/containers/standins/*/Dockerfile
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --quiet .github/workflows

# buf lint (STANDARD, exceptions in buf.yaml) and buf breaking against $(PROTO_AGAINST), offline (tools/protolint.py).
proto-lint: install
	$(PY) -m tools.protolint --against "$(PROTO_AGAINST)"

# The manifests against the Kubernetes API schemas, unknown fields refused.
k8s-check: install
	$(BIN)/kubernetes-validate --strict --quiet $(MANIFESTS)
	$(PY) -m tools.capacity --check deploy/kubernetes   # requests, replicas, autoscalers: docs/capacity.md

# Needs root: installs Docker's engine from Debian and runs a private one (tools/containers/run.sh).
containers: install
	tools/containers/run.sh

proto: install
	$(PY) -m tools.genproto

# bin/ is not in git: the link points into the build cache (tools/gotools.py), at the pinned version.
grpcurl: install
	@mkdir -p bin && ln -sfn "$$($(PY) -m tools.gotools grpcurl)" bin/grpcurl && echo "bin/grpcurl -> $$(readlink bin/grpcurl)"

proto-check: install
	$(PY) -m tools.genproto --check

# Pins the whole dev tree (requirements.lock) and, in a scratch venv, the runtime tree the image installs.
lock: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .cache/lockvenv && $(PYTHON) -m venv .cache/lockvenv
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > .cache/runtime.in
	.cache/lockvenv/bin/pip install --quiet -r .cache/runtime.in
	(echo "# Runtime dependencies only (what the Docker image installs). Made by make lock."; .cache/lockvenv/bin/pip freeze) > requirements-runtime.lock

# The network-partition test alone, three times in a row, printing its figures (make test runs it once).
chaos: install tools
	for run in 1 2 3; do $(PY) -m pytest -q -s tests/e2e/test_cassandra_partition.py || exit 1; done

# The performance goals side by side (edge, naive proxy, Go gateway, services, spans, overload, orders on
# both stores) and the table of where each stands; about 10 minutes (docs/benchmarks.md).
bench: install tools
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	$(PY) -m bench.goals

clean:
	rm -rf $(VENV) .pytest_cache
