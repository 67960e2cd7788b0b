# rankstream — every target lists itself in `make help`.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	@# A venv whose interpreter no longer runs (machine changed) is rebuilt from scratch.
	@$(BIN)/python -c 'import sys' 2>/dev/null || rm -rf $(VENV)
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Local services for tests, benchmarks and `make run-cluster` (docs/DEVELOPMENT.md):
# redis-server from Debian, the Kafka broker's jars from Maven Central into .services/.
KAFKA_LIBS := .services/kafka/libs
KAFKA_STAMP := .services/kafka/.fetched-stamp
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(KAFKA_STAMP): services/kafka/pom.xml
	@# A new pom may pin another version: no stale jar of the old one stays on the classpath.
	@rm -rf $(KAFKA_LIBS) && mkdir -p $(KAFKA_LIBS)
	@if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then \
		mkdir -p .services && { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven default-jre-headless; \
		} >.services/apt.log 2>&1 || { cat .services/apt.log; exit 1; }; fi
	@mvn -q -B --no-transfer-progress -f services/kafka/pom.xml package \
		-Dkafka.libs.dir=$(CURDIR)/$(KAFKA_LIBS) >.services/kafka/maven.log 2>&1 \
		|| { cat .services/kafka/maven.log; exit 1; }
	@touch $@

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## Create .venv and install rankstream with its dev tools

.PHONY: services
services: $(KAFKA_STAMP) ## Install redis-server and chromium (apt) and fetch the Kafka broker (Maven) if missing
	@if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
		mkdir -p .services && { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools; \
		} >.services/apt.log 2>&1 || { cat .services/apt.log; exit 1; }; fi
	@# The dashboard tests drive Debian's Chromium with Playwright (never `playwright install`).
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		mkdir -p .services && { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
		} >.services/apt.log 2>&1 || { cat .services/apt.log; exit 1; }; fi

SCENARIO ?= views
.PHONY: run
run: $(STAMP) ## The service on 127.0.0.1:8000 fed by realistic traffic (SCENARIO=views|game|shop; Ctrl-C stops)
	$(BIN)/rankstream demo --scenario $(SCENARIO)

.PHONY: screenshot
screenshot: $(STAMP) services ## Regenerate docs/dashboard.png from a live demo in headless Chromium (SCENARIO=views|game|shop)
	$(BIN)/python -m tests.dashboard.screenshot docs/dashboard.png --scenario $(SCENARIO)

API_PORTS ?= 8001,8002

.PHONY: run-cluster
run-cluster: $(STAMP) services ## Kafka, Redis, S3 (moto), 2 workers, 2 API replicas (API_PORTS) and traffic (Ctrl-C stops)
	$(BIN)/python -m rankstream.devservices.cluster --api-ports $(API_PORTS)

.PHONY: simulate
simulate: $(STAMP) ## Run a generated 30-day stream through the engine in-process; print the top 10s
	$(BIN)/rankstream simulate

.PHONY: test
test: $(STAMP) services ## Lint (ruff), type-check (mypy strict) and run the whole test suite
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

FUZZ_MINUTES ?= 5
FUZZ_SCALE ?= 5
FUZZ_TESTS := tests/api/test_fuzz.py tests/api/test_schemathesis.py tests/engine tests/boards tests/service/test_pipeline.py \
	tests/analytics/test_queries.py tests/analytics/test_schemathesis.py

.PHONY: fuzz
fuzz: $(STAMP) ## Random exploration for FUZZ_MINUTES (5): every Hypothesis and Schemathesis suite, budgets x FUZZ_SCALE
	@end=$$(( $$(date +%s) + $(FUZZ_MINUTES) * 60 )); round=0; \
	while [ $$(date +%s) -lt $$end ]; do \
		round=$$((round + 1)); echo "== fuzz round $$round"; \
		HYPOTHESIS_PROFILE=fuzz RANKSTREAM_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -x $(FUZZ_TESTS) || exit 1; \
	done; echo "== fuzz: $$round rounds in $(FUZZ_MINUTES) min, no failure"

.PHONY: bench
bench: bench-engine bench-http bench-restart bench-cluster bench-publish bench-game bench-dashboard ## All benchmarks (not part of `make test`); see docs/BENCHMARKS.md

.PHONY: bench-engine
bench-engine: $(STAMP) ## Engine on one core: ingest, top-k latency, memory; the cost of each extra board (about 3 min)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_boards.py

.PHONY: bench-http
bench-http: $(STAMP) ## The service over loopback: ingest, top-k under load, freshness (about 1 min)
	$(BIN)/python benchmarks/bench_http.py

.PHONY: bench-app
bench-app: $(STAMP) ## The HTTP app's own time per request, in-process (about 20 s)
	$(BIN)/python benchmarks/bench_app.py

.PHONY: bench-dashboard
bench-dashboard: $(STAMP) services ## What open dashboards cost: requests/s, CPU, top-k p99 with 20 open while ingesting (about 5 min)
	$(BIN)/python benchmarks/bench_dashboard.py

.PHONY: bench-hot
bench-hot: $(STAMP) services ## Hot rankings: read copies on a 3-node Redis Cluster, 0 vs 2 (about 1 min)
	$(BIN)/python benchmarks/bench_hot.py

.PHONY: bench-restart
bench-restart: $(STAMP) ## Restart time with 10 million logged events (several minutes)
	$(BIN)/python benchmarks/bench_restart.py

.PHONY: bench-cluster
bench-cluster: $(STAMP) services ## Scale-out on this machine: throughput, freshness, Redis cost, top-k vs partitions (about 25 min)
	$(BIN)/python benchmarks/bench_cluster.py

.PHONY: bench-game
bench-game: $(STAMP) services ## The game scenario's boards end to end, embedded and scale-out: ingest, freshness (about 6 min)
	$(BIN)/python benchmarks/bench_game.py

.PHONY: bench-publish
bench-publish: $(STAMP) ## One partition's publish rounds in-process (scale-out's costliest step; ~1 min)
	$(BIN)/python benchmarks/bench_publish.py

.PHONY: bench-analytics
bench-analytics: $(STAMP) ## Analytics store vs naive PostgreSQL, 50 M views (ROWS=...; installs postgresql; long)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		mkdir -p .services && { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
		} >.services/apt.log 2>&1 || { cat .services/apt.log; exit 1; }; fi
	$(BIN)/python benchmarks/bench_analytics.py --rows $(ROWS)

ROWS ?= 50000000

.PHONY: format
format: $(STAMP) ## Format and auto-fix the code
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
